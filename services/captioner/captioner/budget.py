"""A request's context budget, counted before the engine with the model's own processor rules.

Qwen2-VL-style processors resize every image (and every pair of video frames) to a multiple of
`patch_size * merge_size` within their pixel limits and turn each merged patch into one token; a
1280·28·28 image is about 1,270 tokens, 32 frames at 360x640 about 4,800. Qwen2.5-Omni hears audio
as Whisper features (a frame per 10 ms) through a stride-2 convolution and a pooling by 2: 25
tokens a second, 1,500 for a minute. vLLM refuses a prompt
longer than `max_model_len` with a validation error; counting here turns that into a 413 that
names the cap, before any engine work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_ASPECT_RATIO = 200
"""Qwen2-VL's resize refuses images (and frames) more elongated than this."""


@dataclass(frozen=True)
class VisionGeometry:
    """How the processor turns pixels into tokens."""

    patch: int
    merge: int
    temporal: int
    image_pixels: tuple[int, int]
    """(min, max) pixels an image is resized into."""
    video_pixels: tuple[int, int]

    @classmethod
    def of(cls, processor: Any) -> VisionGeometry | None:
        """Read from a loaded processor; None when it is not of the Qwen2-VL kind."""
        image = getattr(processor, "image_processor", None)
        video = getattr(processor, "video_processor", None) or image
        if image is None or getattr(image, "merge_size", None) is None:
            return None
        return cls(
            patch=int(image.patch_size),
            merge=int(image.merge_size),
            temporal=int(getattr(video, "temporal_patch_size", 2)),
            image_pixels=_pixel_range(image),
            video_pixels=_pixel_range(video),
        )

    def _resized(self, width: int, height: int, pixels: tuple[int, int]) -> tuple[int, int]:
        """Qwen2-VL's `smart_resize`: sides on the merged-patch grid, pixels within range."""
        factor = self.patch * self.merge
        low, high = pixels
        h = round(height / factor) * factor
        w = round(width / factor) * factor
        if h * w > high:
            beta = math.sqrt(height * width / high)
            h = max(factor, math.floor(height / beta / factor) * factor)
            w = max(factor, math.floor(width / beta / factor) * factor)
        elif h * w < low:
            beta = math.sqrt(low / (height * width))
            h = math.ceil(height * beta / factor) * factor
            w = math.ceil(width * beta / factor) * factor
        return w, h

    def _tokens(self, width: int, height: int) -> int:
        return (width // self.patch) * (height // self.patch) // (self.merge**2)

    def image_tokens(self, width: int, height: int) -> int:
        return self._tokens(*self._resized(width, height, self.image_pixels))

    def video_tokens(self, frames: int, width: int, height: int) -> int:
        pairs = math.ceil(frames / self.temporal)
        return pairs * self._tokens(*self._resized(width, height, self.video_pixels))


@dataclass(frozen=True)
class AudioGeometry:
    """How Qwen2.5-Omni's processor and audio encoder turn samples into tokens."""

    sample_rate: int
    hop: int
    """Samples per feature frame."""

    @classmethod
    def of(cls, processor: Any) -> AudioGeometry | None:
        """Read from a loaded processor; None when it is not Qwen2.5-Omni's (other audio
        models' encoders count differently, and are not budgeted here)."""
        features = getattr(processor, "feature_extractor", None)
        if features is None or not type(processor).__name__.startswith("Qwen2_5Omni"):
            return None
        return cls(sample_rate=int(features.sampling_rate), hop=int(features.hop_length))

    def audio_tokens(self, samples: int, rate: int) -> int:
        resampled = math.ceil(samples * self.sample_rate / rate)
        frames = math.ceil(resampled / self.hop)  # the feature mask's frames
        convolved = (frames - 1) // 2 + 1
        return (convolved - 2) // 2 + 1


def _pixel_range(processor: Any) -> tuple[int, int]:
    """transformers 5 keeps min/max pixels as `size.shortest_edge/longest_edge`; 4.x as
    `min_pixels/max_pixels`."""
    size = getattr(processor, "size", None)
    low = getattr(processor, "min_pixels", None) or getattr(size, "shortest_edge", None)
    high = getattr(processor, "max_pixels", None) or getattr(size, "longest_edge", None)
    if isinstance(size, dict):
        low = low or size.get("shortest_edge") or size.get("min_pixels")
        high = high or size.get("longest_edge") or size.get("max_pixels")
    return int(low or 56 * 56), int(high or 28 * 28 * 1280)


def padded_for_aspect(width: int, height: int) -> tuple[int, int]:
    """The smallest size holding `width` x `height` whose aspect ratio the processor takes
    (the short side grows; the picture is centred on black)."""
    if width >= height:
        return width, max(height, math.ceil(width / MAX_ASPECT_RATIO))
    return max(width, math.ceil(height / MAX_ASPECT_RATIO)), height
