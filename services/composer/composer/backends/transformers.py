"""MusicGen through transformers (`MusicgenForConditionalGeneration`): the CPU default.

Streaming: `generate(streamer=...)` never reaches MusicGen's sampling loop in transformers 5.x,
so a `StoppingCriteria` serves as the per-step hook instead: after every step it reads the codes
generated so far, emits finished chunks through the sink, and stops rows that are complete or
cancelled. Sampling is per row (see `sampling.py`). Audio longer than one window is continued
window by window, each new window prompted with the previous window's last codes (exact tokens,
as audiocraft's extension does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from composer.backends import BackendOptions, BatchSink
from composer.backends.sampling import RowSampler
from composer.backends.streaming import undelay
from composer.backends.windowed import Window, WindowedBackend

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TransformersBackend(WindowedBackend):
    """`MusicBackend` over a transformers MusicGen checkpoint (hub id or local folder)."""

    def __init__(self, model: Any, processor: Any, options: BackendOptions) -> None:
        audio_config = model.config.audio_encoder
        super().__init__(
            options,
            sample_rate=int(audio_config.sampling_rate),
            hop=int(np.prod(audio_config.upsampling_ratios)),
            codebooks=int(model.decoder.num_codebooks),
        )
        self._model = model
        self._processor = processor
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
    def channels(self) -> int:
        return int(self._model.config.audio_encoder.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return False

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        audio = self._model.audio_encoder.decode(codes[None, None], audio_scales=[None])
        return audio.audio_values[0]

    def _run(self, window: Window, sink: BatchSink) -> None:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        rows, k = window.rows, self._codebooks
        inputs = self._processor(
            text=[r.request.description for r in rows], padding=True, return_tensors="pt"
        ).to(self._model.device)
        kwargs: dict[str, Any] = {}
        if window.prompt is not None:
            start = torch.full((len(rows), k, 1), self._pad, dtype=torch.long)
            kwargs["decoder_input_ids"] = (
                torch.cat([start, window.prompt], dim=-1)
                .reshape(len(rows) * k, -1)
                .to(self._model.device)
            )
        hook = _StepHook(window, sink, k)
        self._model.generate(
            **inputs,
            **kwargs,
            do_sample=False,
            guidance_scale=rows[0].request.params.guidance,
            max_new_tokens=window.new_frames + k - 1,
            logits_processor=LogitsProcessorList(
                [RowSampler([r.request.params for r in rows], k, str(self._model.device))]
            ),
            stopping_criteria=StoppingCriteriaList([hook]),
        )
        if hook.codes is not None:
            window.finish(sink, hook.codes, self.keep_frames)


class _StepHook:
    """Called by `generate` after every step: hands the codes so far to the window."""

    def __init__(self, window: Window, sink: BatchSink, codebooks: int) -> None:
        self._window = window
        self._sink = sink
        self._codebooks = codebooks
        self.codes: torch.Tensor | None = None
        self._step = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        window, k = self._window, self._codebooks
        codes = undelay(input_ids.reshape(len(window.rows), k, -1))
        if window.prompt is not None:  # the prompt's own codes, exactly (see module docstring)
            codes[:, :, : window.prompt_frames] = window.prompt[:, :, : codes.shape[-1]]
        self.codes = codes
        self._step += 1
        self._sink.progress(self._step, window.new_frames + k)
        window.step(self._sink, codes)
        # MusicGen's generate runs every row for the same number of steps (its delay pattern
        # must close), so rows never stop on their own: shorter rows just stop emitting.
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
