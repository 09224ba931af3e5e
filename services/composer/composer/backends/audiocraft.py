"""MusicGen through audiocraft (the reference implementation; production on GPUs).

audiocraft has no streaming API, so the backend hooks its token loop: the language model's
`_sample_next_token` is wrapped for the duration of a batch, which shows every step's input
columns (the delayed code sequence) and lets finished chunks be decoded and emitted while the
rest is generated. Sampling is per row with per-row generators (same audio alone or batched),
by standing in for audiocraft's top-k sampler during the batch. Audio longer than the model's
30 s is continued window by window from the previous window's last codes, as audiocraft's own
extension does. Runs on CPU torch 2.13 with `audiocraft_compat` (see there).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from composer.backends import BackendOptions, BatchSink
from composer.backends.sampling import sample
from composer.backends.streaming import undelay
from composer.backends.windowed import Window, WindowedBackend


class AudiocraftBackend(WindowedBackend):
    """`MusicBackend` over `audiocraft.models.MusicGen` (hub id or local folder)."""

    def __init__(self, model: Any, options: BackendOptions) -> None:
        super().__init__(
            options,
            sample_rate=int(model.sample_rate),
            hop=int(model.sample_rate // model.frame_rate),
            codebooks=int(model.lm.num_codebooks),
        )
        self._model = model

    @classmethod
    def load(cls, options: BackendOptions) -> AudiocraftBackend:
        from composer.backends.audiocraft_compat import install

        install()
        from audiocraft.models import MusicGen

        return cls(MusicGen.get_pretrained(options.model, device=options.device), options)

    @property
    def channels(self) -> int:
        return int(self._model.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return "self_wav" in self._model.lm.condition_provider.conditioners

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self._model.compression_model.decode(codes[None], None)[0]

    def _run(self, window: Window, sink: BatchSink) -> None:
        rows = window.rows
        attributes, _ = self._model._prepare_tokens_and_attributes(
            [r.request.description for r in rows], None
        )
        columns: list[torch.Tensor] = []
        total = window.prompt_frames + window.new_frames

        def on_step(sequence: torch.Tensor) -> None:
            columns.append(sequence)
            sink.progress(len(columns), total + self._codebooks)
            window.step(sink, undelay(torch.cat(columns, dim=-1)))

        params = [r.request.params for r in rows]
        with self._hooked(on_step, params):
            codes = self._model.lm.generate(
                window.prompt,
                attributes,
                max_gen_len=total,
                use_sampling=True,
                temp=1.0,
                top_k=1,
                top_p=0.0,
                cfg_coef=params[0].guidance,
            )
        window.finish(sink, codes, self.keep_frames)

    @contextmanager
    def _hooked(self, on_step: Callable[[torch.Tensor], None], params: list[Any]) -> Iterator[None]:
        """Watch the token loop's inputs and sample per row, for one `lm.generate` call."""
        from audiocraft.models import lm as lm_module

        lm = self._model.lm
        original_step = lm._sample_next_token
        original_utils = lm_module.utils
        generators = [
            torch.Generator(device=str(lm.device if hasattr(lm, "device") else "cpu"))
            for _ in params
        ]
        for generator, p in zip(generators, params, strict=True):
            generator.manual_seed(p.seed)

        def sample_rows(probs: torch.Tensor, k: int) -> torch.Tensor:  # probs [B, K, card]
            logits = probs.clamp_min(1e-30).log()
            tokens = [sample(logits[b], params[b], generators[b]) for b in range(len(params))]
            return torch.stack(tokens)[..., None]

        def step(sequence: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            on_step(sequence)
            return original_step(sequence, *args, **kwargs)

        lm._sample_next_token = step
        lm_module.utils = types.SimpleNamespace(
            **{**vars(original_utils), "sample_top_k": sample_rows}
        )
        try:
            yield
        finally:
            del lm._sample_next_token
            lm_module.utils = original_utils
