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

import logging
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from composer.backends import BackendOptions, BatchSink, GenerationRequest
from composer.backends.sampling import sample
from composer.backends.streaming import RowDecoder, RowState, undelay

logger = logging.getLogger(__name__)


class BatchCancelled(Exception):
    """Raised inside the token loop when nobody is waiting for any row."""


class AudiocraftBackend:
    """`MusicBackend` over `audiocraft.models.MusicGen` (hub id or local folder)."""

    def __init__(self, model: Any, options: BackendOptions) -> None:
        self._model = model
        self._options = options
        self._sample_rate = int(model.sample_rate)
        self._hop = int(model.sample_rate // model.frame_rate)
        self._frame_rate = float(model.frame_rate)
        self._codebooks = int(model.lm.num_codebooks)

    @classmethod
    def load(cls, options: BackendOptions) -> AudiocraftBackend:
        from composer.backends.audiocraft_compat import install

        install()
        from audiocraft.models import MusicGen

        return cls(MusicGen.get_pretrained(options.model, device=options.device), options)

    @property
    def name(self) -> str:
        return self._options.model

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return int(self._model.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return "self_wav" in self._model.lm.condition_provider.conditioners

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self._frame_rate))

    def samples_for(self, seconds: float) -> int:
        return self.frames(seconds) * self._hop

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> audio [C, F * hop]."""
        return self._model.compression_model.decode(codes[None], None)[0]

    def _row_decoder(self, start: int) -> RowDecoder:
        o = self._options
        return RowDecoder(
            self._decode,
            hop=self._hop,
            chunk=self.frames(o.chunk_s),
            context=self.frames(o.decode_context_s),
            lookahead=4,
            start=start,
        )

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        rows = [RowState(i, r, self.frames(r.params.duration_s)) for i, r in enumerate(batch)]
        first = True
        with torch.inference_mode():
            while True:
                active = [r for r in rows if not r.finished and not sink.is_cancelled(r.index)]
                if not active:
                    return
                if not self._window(active, sink, first):
                    return
                first = False

    def _window(self, rows: list[RowState], sink: BatchSink, first: bool) -> bool:
        """One pass of the token loop; False when every row was cancelled during it."""
        o = self._options
        budget = self.frames(o.window_s if first else o.extend_stride_s)
        new_frames = min(budget, max(r.total_frames - r.done_frames for r in rows))
        prompt = None if first else torch.stack([r.tail for r in rows if r.tail is not None])
        prompt_frames = 0 if prompt is None else prompt.shape[-1]
        for row in rows:
            row.decoder = self._row_decoder(prompt_frames)
        attributes, _ = self._model._prepare_tokens_and_attributes(
            [r.request.description for r in rows], None
        )
        columns: list[torch.Tensor] = []

        def on_step(sequence: torch.Tensor) -> None:
            columns.append(sequence)
            codes = undelay(torch.cat(columns, dim=-1))
            sink.progress(len(columns), prompt_frames + new_frames + self._codebooks)
            live = 0
            for i, row in enumerate(rows):
                if sink.is_cancelled(row.index):
                    continue
                live += 1
                assert row.decoder is not None
                chunk = row.decoder.update(codes[i], row.limit(prompt_frames, new_frames))
                if chunk is not None:
                    sink.emit(row.index, chunk)
            if live == 0:
                raise BatchCancelled

        params = [r.request.params for r in rows]
        try:
            with self._hooked(on_step, params):
                codes = self._model.lm.generate(
                    prompt,
                    attributes,
                    max_gen_len=prompt_frames + new_frames,
                    use_sampling=True,
                    temp=1.0,
                    top_k=1,
                    top_p=0.0,
                    cfg_coef=params[0].guidance,
                )
        except BatchCancelled:
            logger.info("every row of the batch was cancelled; generation stopped")
            return False
        keep = self.frames(o.window_s - o.extend_stride_s)
        for i, row in enumerate(rows):
            row.finish_window(sink, codes[i], prompt_frames, new_frames, keep)
        return True

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
