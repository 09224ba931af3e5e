"""A melody's chroma, as MusicGen-melody's feature extractor computes it, and its stems.

transformers' `MusicgenMelodyFeatureExtractor` needs torchaudio, which cannot load beside this
torch; this is its computation in torch alone, with the settings read from the checkpoint's
`preprocessor_config.json`: a normalised power spectrogram (`n_fft`, `hop_length`), librosa's
chroma filter bank, and per frame a one-hot of the strongest pitch class. The checkpoint was
trained on the chroma of the melody's non-drum stems: `StemSeparator` keeps demucs' `vocals` and
`other` sources, as audiocraft's chroma conditioner and the extractor's `stem_indices` do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from composer.spectrogram import Spectrogram

logger = logging.getLogger(__name__)

MELODY_STEMS = ("vocals", "other")
"""The demucs sources whose sum the melody checkpoints' chroma was trained on."""


@dataclass(frozen=True)
class ChromaSettings:
    """The feature extractor's settings (the real checkpoint's defaults)."""

    sampling_rate: int = 32000
    n_fft: int = 16384
    hop_length: int = 4096
    num_chroma: int = 12
    chunk_length: int = 30
    """Seconds of melody the extractor keeps."""

    @classmethod
    def of_checkpoint(cls, folder: str | Path) -> ChromaSettings:
        """Read `preprocessor_config.json` of a local checkpoint folder or a cached hub id."""
        from transformers.utils import cached_file

        path = cached_file(str(folder), "preprocessor_config.json")
        if path is None:
            return cls()
        config = json.loads(Path(path).read_text())
        fields = ("sampling_rate", "n_fft", "hop_length", "num_chroma", "chunk_length")
        return cls(**{name: int(config[name]) for name in fields if name in config})


class ChromaExtractor:
    """Chroma one-hots [frames, num_chroma] of mono audio at `settings.sampling_rate`."""

    def __init__(self, settings: ChromaSettings) -> None:
        from transformers.audio_utils import chroma_filter_bank

        self.settings = settings
        filters = chroma_filter_bank(
            sampling_rate=settings.sampling_rate,
            num_frequency_bins=settings.n_fft,
            tuning=0,
            num_chroma=settings.num_chroma,
        )
        self._filters = torch.from_numpy(filters).float()
        self._spectrogram = Spectrogram(
            n_fft=settings.n_fft,
            win_length=settings.n_fft,
            hop_length=settings.hop_length,
            power=2,
            center=True,
            pad=0,
            normalized=True,
        )

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        s = self.settings
        wav = wav.float().cpu()[: s.chunk_length * s.sampling_rate]
        if wav.shape[-1] < s.n_fft:
            pad = s.n_fft - wav.shape[-1]
            wav = torch.nn.functional.pad(wav, (pad // 2, pad // 2 + pad % 2))
        spec = self._spectrogram(wav[None])[0]
        raw = torch.einsum("cf,ft->ct", self._filters, spec)
        norm = torch.nn.functional.normalize(raw, p=float("inf"), dim=-2, eps=1e-6).T
        return torch.zeros_like(norm).scatter_(-1, norm.argmax(-1, keepdim=True), 1.0)


class StemSeparator:
    """demucs' `htdemucs` (from the model hub, as audiocraft loads it): a melody's non-drum
    stems, mono at `sample_rate`. Deterministic: no random time shift (`shifts=0`)."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self._model = model
        self._device = device
        self._keep = [model.sources.index(name) for name in MELODY_STEMS]

    @classmethod
    def load(cls, device: torch.device) -> StemSeparator:
        from demucs.pretrained import get_model

        model = get_model("htdemucs")
        model.eval()
        return cls(model, device)

    def __call__(self, wav: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
        """wav [T] mono at `sample_rate` -> the kept stems' sum [T'] mono at `target_rate`."""
        from demucs.apply import apply_model
        from julius.resample import resample_frac

        model = self._model
        mix = resample_frac(wav.float()[None], sample_rate, model.samplerate)
        mix = mix.expand(model.audio_channels, -1)
        with torch.inference_mode():
            stems = apply_model(model, mix[None], shifts=0, device=self._device, progress=False)
        kept = stems[0, self._keep].sum(0).mean(0)
        return resample_frac(kept.cpu(), model.samplerate, target_rate)
