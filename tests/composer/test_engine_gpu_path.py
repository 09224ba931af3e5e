"""The engine's GPU path, proven on the CPU: a steady step reads nothing back from the device,
the compiled step mutates only static per-layer buffers (what CUDA graphs need), a row whose
logits go non-finite fails alone, the codec and T5 stay in float32 under a half-precision
language model, the sampler draws the distribution it claims, and every bucket warms up before
serving."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.dispatch_count import DispatchCount
from composer.codec.sampling import RowKnobs, draw_noise, sample_rows
from composer.engine.core import EngineCore
from composer.engine.delivery import NonFiniteLogits
from composer.engine.loader import TransformersBackend
from composer.generation import GenerationParams
from tests.composer.test_engine import Recorder, load, request, solo

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def windowed(tiny_musicgen: Path) -> TransformersBackend:
    return load(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)


def recorders(core: EngineCore) -> list[Recorder]:
    return [row.listener for row in core.rows]  # type: ignore[misc]


def steady_core(
    backend: TransformersBackend, fixed: bool, threaded_delivery: bool = False
) -> EngineCore:
    """Three rows at different positions, well past their first steps."""
    core = EngineCore(
        backend.model, backend.geometry, 4, fixed_shapes=fixed, threaded_delivery=threaded_delivery
    )
    for i, seconds in enumerate((1.5, 1.5, 1.5)):
        r = request("lofi beat", seconds, i, top_p=0.9 if i == 1 else 0.0)
        core.admit(r, Recorder(), backend.condition(r))
        for _ in range(3):
            core.step()
    return core


@pytest.mark.parametrize("fixed", [False, True], ids=["trimmed", "fixed"])
def test_a_steady_step_reads_nothing_back_from_the_device(
    windowed: TransformersBackend, fixed: bool
) -> None:
    """Before: int(positions.max()), bool(...any()) and two checks per row in multinomial."""
    core = steady_core(windowed, fixed, threaded_delivery=True)
    with DispatchCount() as count:  # counts this thread's ops: the model thread's
        for _ in range(30):  # chunks are cut in here, decoded on the delivery thread
            assert core.step() == 3
    core.delivery.flush()
    assert count.syncs == 0, count.ops
    assert all(rec.chunks for rec in recorders(core))
    core.close()


class MutationCheck:
    """A torch.compile backend that records, for each graph, which inputs the graph mutates
    and which inputs are static (parameters, buffers, `mark_static_address`): cudagraph trees
    refuse to capture a graph that mutates an input that is not static."""

    def __init__(self) -> None:
        self.graphs: list[dict[str, Any]] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        from torch._functorch.aot_autograd import aot_module_simplified
        from torch._guards import TracingContext

        def inspect(graph: torch.fx.GraphModule, inputs: list[Any]) -> Any:
            context = TracingContext.try_get()
            assert context is not None and context.fw_metadata is not None
            meta = context.fw_metadata
            mutated = [i for i, info in enumerate(meta.input_info) if info.mutates_data]
            self.graphs.append(
                {
                    "mutated": mutated,
                    "static": set(meta.static_input_indices),
                    "shapes": {i: tuple(inputs[i].shape) for i in mutated},
                }
            )
            return graph.forward

        return aot_module_simplified(gm, example_inputs, fw_compiler=inspect)


def test_the_compiled_step_writes_only_static_per_layer_buffers(
    windowed: TransformersBackend,
) -> None:
    """Before: the cache was one 5-D buffer, mutated and not static — cudagraphs skipped the
    graph (silently) and Inductor copied the whole slab of every layer every step."""
    torch._dynamo.reset()
    core = EngineCore(windowed.model, windowed.geometry, 2, cuda_graphs=True)
    check = MutationCheck()
    core._forward = torch.compile(windowed.model.step, backend=check, dynamic=False)
    r = request("lofi beat", 1.0, 1)
    core.admit(r, Recorder(), windowed.condition(r))
    for _ in range(3):
        core.step()
    assert check.graphs, "the step was never compiled"
    layer_shape = tuple(core.cache.keys[0].shape)
    for graph in check.graphs:
        assert graph["mutated"], "the step writes the cache"
        assert set(graph["mutated"]) <= graph["static"]
        assert set(graph["shapes"].values()) == {layer_shape}
        assert len(graph["mutated"]) == 2 * windowed.model.layers
    torch._dynamo.reset()


def test_the_recompile_limit_holds_every_bucket(windowed: TransformersBackend) -> None:
    """Before: at 128 slots the eight buckets sat exactly at dynamo's default limit of eight
    compiles, so one more recompile (a guard failing once) left the largest bucket eager."""
    config = torch._dynamo.config
    before = config.recompile_limit
    try:
        config.recompile_limit = 8
        core = EngineCore(windowed.model, windowed.geometry, 128, cuda_graphs=True)
        assert len(core.buckets) == 8
        assert config.recompile_limit >= len(core.buckets) + 4
    finally:
        config.recompile_limit = before


class FailRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.error = error


def test_a_row_whose_logits_are_not_finite_fails_alone(windowed: TransformersBackend) -> None:
    """Before: one NaN row tripped multinomial's check and failed every row of the step.
    (The NaN is injected into one slot's text keys: no real weights produce it on demand.)"""
    good, bad = request("lofi beat", 1.0, 3), request("sad cello", 1.0, 4)
    core = EngineCore(windowed.model, windowed.geometry, 2)
    kept, failing = Recorder(), FailRecorder()
    core.admit(good, kept, windowed.condition(good))
    core.admit(bad, failing, windowed.condition(bad))
    core.cache.cross_keys[:, 1] = float("nan")
    while core.rows:
        core.step()
    assert isinstance(failing.error, NonFiniteLogits) and not failing.finished
    assert kept.finished
    np.testing.assert_array_equal(kept.audio(), solo(windowed, good))


def test_the_codec_and_t5_stay_float32_under_a_half_precision_lm(tiny_musicgen: Path) -> None:
    """Before: the whole model was cast, EnCodec and T5 included."""
    backend = load(tiny_musicgen, dtype="bfloat16")  # type: ignore[arg-type]
    model = backend.model.model
    assert backend.model.dtype == torch.bfloat16
    assert {p.dtype for p in model.decoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.audio_encoder.parameters()} == {torch.float32}
    assert {p.dtype for p in model.text_encoder.parameters()} == {torch.float32}
    r = request("lofi beat", 0.5, 1)
    core = backend.engine(1)
    rec = Recorder()
    core.admit(r, rec, backend.condition(r))
    while core.rows:
        core.step()
    audio = rec.audio()
    assert audio.dtype == np.float32 and audio.shape == (1, 16000) and np.isfinite(audio).all()


def draws(probs: list[float], params: GenerationParams, n: int = 20000) -> np.ndarray:
    """How often each token is drawn from logits log(probs), n rows at once."""
    logits = torch.tensor(probs).log().expand(n, 1, len(probs)).contiguous()
    knobs = RowKnobs.of([params] * n, len(probs), torch.device("cpu"))
    generator = torch.Generator().manual_seed(7)
    noise = draw_noise(logits.shape, generator)
    tokens = sample_rows(logits, knobs, noise)
    return np.bincount(tokens.flatten().numpy(), minlength=len(probs)) / n


def test_the_sampler_draws_the_distribution_it_is_given() -> None:
    probs = [0.5, 0.3, 0.15, 0.05]
    plain = GenerationParams(duration_s=1, seed=1, top_k=0)
    np.testing.assert_allclose(draws(probs, plain), probs, atol=0.015)
    top2 = draws(probs, GenerationParams(duration_s=1, seed=1, top_k=2))
    np.testing.assert_allclose(top2, [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.015)
    nucleus = draws(probs, GenerationParams(duration_s=1, seed=1, top_k=0, top_p=0.85))
    np.testing.assert_allclose(nucleus, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], atol=0.015)
    hot = draws(probs, GenerationParams(duration_s=1, seed=1, top_k=0, temperature=2.0))
    flattened = np.sqrt(probs) / np.sqrt(probs).sum()
    np.testing.assert_allclose(hot, flattened, atol=0.015)
    greedy = draws(probs, GenerationParams(duration_s=1, seed=1, temperature=0.0))
    assert greedy.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert math.isclose(sum(draws(probs, plain)), 1.0)


def test_every_bucket_warms_up_before_serving(windowed: TransformersBackend) -> None:
    core = EngineCore(windowed.model, windowed.geometry, 6, fixed_shapes=True)
    assert core.buckets == [1, 2, 4, 6]
    ready: list[int] = []
    assert core.warm_up(lambda bucket, _: ready.append(bucket)) > 0
    assert ready == [1, 2, 4, 6]
    r = request("lofi beat", 1.0, 2)  # what warm-up wrote is overwritten by admission
    rec = Recorder()
    core.admit(r, rec, windowed.condition(r))
    with pytest.raises(RuntimeError, match="warm up before"):
        core.warm_up()
    while core.rows:
        core.step()
    np.testing.assert_array_equal(rec.audio(), solo(windowed, r))


@pytest.mark.timeout(300)
def test_the_service_warms_every_bucket_before_it_is_ready(
    tiny_musicgen: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Fixed shapes on the CPU (the same warm-up that compiles and captures on CUDA): /readyz
    turns true only after each bucket ran, said in the log and timed in /metrics; then a
    request is served on those buckets."""
    import httpx

    from tests.composer.conftest import serve_composer
    from tests.metrics import metric

    settings = {"fixed_shapes": "true", "max_batch_size": "3", "window_s": "2"}
    with serve_composer("transformers", tiny_musicgen, tmp_path_factory, **settings) as service:
        log = service.log()
        assert "engine: 3 slots, CUDA graphs off" in log
        for bucket in (1, 2, 3):
            assert f"engine warm-up: bucket of {bucket} rows ready" in log
        assert metric(service.url, "composer_engine_warmup_seconds") > 0
        response = httpx.post(
            f"{service.url}/v1/compose",
            data={"description": "lofi", "duration": "1", "seed": "3", "format": "wav"},
            timeout=120,
        )
        assert response.status_code == 200, response.text


def test_auto_slots_follow_the_documented_formula(windowed: TransformersBackend) -> None:
    from composer.engine.sizing import slots_for
    from composer.engine.slots import SlotCache

    medium = SlotCache.bytes_per_slot(48, 24, 64, 1504, 512, torch.float16)
    assert medium == 1_038_090_240  # musicgen-medium, fp16, a 30 s window: about 1.04 GB
    assert slots_for(139 * 2**30, medium) == 64  # an H200 holds the cap
    assert slots_for(24 * 2**30, medium) == 19
    assert slots_for(2 * 2**30, medium) == 1  # never none: too little fails at allocation
    assert windowed.slots("auto") == 4 and windowed.slots(7) == 7  # the CPU: the old default
