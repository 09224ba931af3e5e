"""MusicGen through transformers (`MusicgenForConditionalGeneration`): the CPU default.

Streaming: `generate(streamer=...)` never reaches MusicGen's sampling loop in transformers 5.x,
so a `StoppingCriteria` serves as the per-step hook instead: after every step it reads the codes
generated so far, emits finished chunks through the sink, and stops rows that are complete or
cancelled. Sampling is per row (see `sampling.py`). Audio longer than one window is continued
window by window, each new window prompted with the previous window's last codes (exact tokens,
as audiocraft's extension does).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from composer.backends import BackendOptions, BatchSink, GenerationRequest
from composer.backends.sampling import RowSampler
from composer.backends.streaming import RowDecoder, RowState, undelay

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TransformersBackend:
    """`MusicBackend` over a transformers MusicGen checkpoint (hub id or local folder)."""

    def __init__(self, model: Any, processor: Any, options: BackendOptions) -> None:
        self._model = model
        self._processor = processor
        self._options = options
        audio_config = model.config.audio_encoder
        self._sample_rate = int(audio_config.sampling_rate)
        self._hop = int(np.prod(audio_config.upsampling_ratios))
        self._frame_rate = self._sample_rate / self._hop
        self._codebooks = int(model.decoder.num_codebooks)
        self._pad = int(model.generation_config.pad_token_id)

    @classmethod
    def load(cls, options: BackendOptions) -> TransformersBackend:
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        model = MusicgenForConditionalGeneration.from_pretrained(
            options.model, dtype=DTYPES[options.dtype]
        )
        model = model.to(options.device).eval()
        return cls(model, AutoProcessor.from_pretrained(options.model), options)

    @property
    def name(self) -> str:
        return self._options.model

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return int(self._model.config.audio_encoder.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return False

    def samples_for(self, seconds: float) -> int:
        return self.frames(seconds) * self._hop

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self._frame_rate))

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> audio [C, F * hop]."""
        with torch.inference_mode():
            audio = self._model.audio_encoder.decode(codes[None, None], audio_scales=[None])
        return audio.audio_values[0]

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
        with torch.inference_mode():
            self._generate(batch, sink)

    def _generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        rows = [RowState(i, r, self.frames(r.params.duration_s)) for i, r in enumerate(batch)]
        first = True
        while True:
            active = [r for r in rows if not r.finished and not sink.is_cancelled(r.index)]
            if not active:
                return
            self._window(active, sink, first)
            first = False

    def _window(self, rows: list[RowState], sink: BatchSink, first: bool) -> None:
        """One generation pass over the active rows (a fresh window or a continuation)."""
        o = self._options
        k = self._codebooks
        budget = self.frames(o.window_s if first else o.extend_stride_s)
        new_frames = min(budget, max(r.total_frames - r.done_frames for r in rows))
        prompt = None if first else torch.stack([r.tail for r in rows if r.tail is not None])
        prompt_frames = 0 if prompt is None else prompt.shape[-1]
        for row in rows:
            row.decoder = self._row_decoder(prompt_frames)
        inputs = self._processor(
            text=[r.request.description for r in rows], padding=True, return_tensors="pt"
        ).to(self._model.device)
        kwargs: dict[str, Any] = {}
        if prompt is not None:
            start = torch.full((len(rows), k, 1), self._pad, dtype=torch.long)
            kwargs["decoder_input_ids"] = (
                torch.cat([start, prompt], dim=-1).reshape(len(rows) * k, -1).to(self._model.device)
            )
        hook = _StepHook(self, rows, sink, prompt, new_frames)
        from transformers import LogitsProcessorList, StoppingCriteriaList

        try:
            self._model.generate(
                **inputs,
                **kwargs,
                do_sample=False,
                guidance_scale=rows[0].request.params.guidance,
                max_new_tokens=new_frames + k - 1,
                logits_processor=LogitsProcessorList(
                    [RowSampler([r.request.params for r in rows], k, str(self._model.device))]
                ),
                stopping_criteria=StoppingCriteriaList([hook]),
            )
        except BatchCancelled:
            logger.info("every row of the batch was cancelled; generation stopped")
            return
        hook.finish()


class BatchCancelled(Exception):
    """Raised from the step hook to end `generate` when nobody is waiting for any row."""


class _StepHook:
    """Called by `generate` after every step: emit chunks, stop complete or cancelled rows."""

    def __init__(
        self,
        backend: TransformersBackend,
        rows: list[RowState],
        sink: BatchSink,
        prompt: torch.Tensor | None,
        new_frames: int,
    ) -> None:
        self._backend = backend
        self._rows = rows
        self._sink = sink
        self._prompt = prompt
        self._prompt_frames = 0 if prompt is None else prompt.shape[-1]
        self._new_frames = new_frames
        self._codes: torch.Tensor | None = None
        self._step = 0

    def _limit(self, row: RowState) -> int:
        return row.limit(self._prompt_frames, self._new_frames)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        k = self._backend._codebooks
        codes = undelay(input_ids.reshape(len(self._rows), k, -1))
        if self._prompt is not None:  # the prompt's own codes, exactly (see module docstring)
            codes[:, :, : self._prompt_frames] = self._prompt[:, :, : codes.shape[-1]]
        self._codes = codes
        self._step += 1
        self._sink.progress(self._step, self._new_frames + k)
        live = 0
        for i, row in enumerate(self._rows):
            if self._sink.is_cancelled(row.index):
                continue
            live += 1
            assert row.decoder is not None
            chunk = row.decoder.update(codes[i], self._limit(row))
            if chunk is not None:
                self._sink.emit(row.index, chunk)
        if live == 0:
            raise BatchCancelled
        # MusicGen's generate runs every row for the same number of steps (its delay pattern
        # must close), so rows never stop on their own: shorter rows just stop emitting.
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def finish(self) -> None:
        """Flush every row's remaining audio and keep its tail codes for the next window."""
        if self._codes is None:
            return
        o = self._backend._options
        keep = self._backend.frames(o.window_s - o.extend_stride_s)
        for i, row in enumerate(self._rows):
            row.finish_window(
                self._sink, self._codes[i], self._prompt_frames, self._new_frames, keep
            )
