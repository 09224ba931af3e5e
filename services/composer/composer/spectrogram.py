"""A power spectrogram in torch alone, computed as `torchaudio.transforms.Spectrogram` does.

Both melody paths need one: audiocraft's chroma conditioner (through `audiocraft_compat`) and
the engine's chroma of a melody (`composer.chroma`), and PyPI's torchaudio cannot load beside
this torch.
"""

from __future__ import annotations

from typing import Any

import torch


class Spectrogram(torch.nn.Module):  # type: ignore[misc]
    """torchaudio.transforms.Spectrogram, in torch: the options both chroma extractors use."""

    def __init__(
        self,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = None,
        pad: int = 0,
        power: float | None = 2.0,
        normalized: bool = False,
        center: bool = True,
        **_: Any,
    ) -> None:
        super().__init__()
        self.n_fft, self.pad, self.power, self.normalized, self.center = (
            n_fft,
            pad,
            power,
            normalized,
            center,
        )
        self.win_length = win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        shape = wav.shape
        flat = wav.reshape(-1, shape[-1])
        if self.pad:
            flat = torch.nn.functional.pad(flat, (self.pad, self.pad))
        spec = torch.stft(
            flat,
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=self.center,
            pad_mode="reflect",
            return_complex=True,
        )
        if self.normalized:
            spec = spec / self.window.pow(2).sum().sqrt()
        out = spec.abs().pow(self.power) if self.power is not None else spec
        return out.reshape(*shape[:-1], *out.shape[-2:])
