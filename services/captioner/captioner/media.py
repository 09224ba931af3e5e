"""Decode uploads under hard caps: images with Pillow (video: `video.py`; audio: common).

Everything here is synchronous and CPU-bound; the describer runs it in a worker thread. Every
failure is raised as an `ApiError` with a status that tells the user what to fix: 413 for
something too big, 415 for something that is not the media it claims to be, 422 for a file of
the right kind that cannot be decoded.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from captioner.budget import padded_for_aspect
from weavewave_common.audio import DecodedAudio
from weavewave_common.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from weavewave_common.protocol import AudioFacts, ImageFacts

IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class MediaLimits:
    """Hard caps for decoding, taken from the service settings."""

    max_decode_pixels: int = 50_000_000
    max_pixels: int = 1280 * 28 * 28
    max_video_seconds: float = 600.0
    max_frames: int = 32
    frames_per_second: float = 1.0
    max_frame_pixels: int = 360 * 640
    max_audio_seconds: float = 60.0
    audio_sample_rate: int = 16000


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    facts: ImageFacts


def fit_within(width: int, height: int, max_pixels: int, multiple: int = 2) -> tuple[int, int]:
    """Largest size with the same aspect ratio and at most `max_pixels`, rounded to `multiple`."""
    scale = min(1.0, math.sqrt(max_pixels / max(1, width * height)))
    w = max(multiple, int(width * scale) // multiple * multiple)
    h = max(multiple, int(height * scale) // multiple * multiple)
    return w, h


def pad_for_aspect(image: Image.Image) -> Image.Image:
    """Centre an image more elongated than the processor takes (200:1) on black, so it is
    seen rather than refused."""
    size = padded_for_aspect(image.width, image.height)
    if size == image.size:
        return image
    canvas = Image.new("RGB", size)
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return canvas


RGB_BYTES = 3
"""What one pixel of the decoding budget (`max_decode_pixels`) is worth: an RGB pixel."""


def bytes_per_pixel(mode: str) -> int:
    """Bytes one pixel of `mode` takes decoded (4 for RGBA, CMYK, I, F; 2 for I;16 and LA)."""
    if mode in ("I", "F", "RGBA", "RGBX", "CMYK", "RGBa"):
        return 4
    if mode.startswith("I;16") or mode in ("LA", "La", "PA"):
        return 2
    if mode in ("RGB", "YCbCr", "LAB", "HSV"):
        return 3
    return 1  # 1, L, P


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB on white for anything with alpha or a palette; plain conversion for CMYK, L, I;16..."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _open_image(file: BinaryIO, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge(
            f"{name}: image dimensions are too large.", code="image_too_large"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia(f"{name}: not a supported image.") from exc
    if image.format not in IMAGE_FORMATS:
        raise UnsupportedMedia(f"{name}: image format {image.format} is not supported.")
    return image


def decode_image(file: BinaryIO, filename: str | None, limits: MediaLimits) -> DecodedImage:
    """Decode one image: bomb guard, EXIF rotation, RGB, downscale to `limits.max_pixels`."""
    name = filename or "image"
    image = _open_image(file, name)
    image_format = str(image.format)
    width, height = image.size
    if width * height > limits.max_decode_pixels:
        raise PayloadTooLarge(
            f"{name}: {width}x{height} is over the {limits.max_decode_pixels}-pixel limit.",
            code="image_too_large",
        )
    if width * height * bytes_per_pixel(image.mode) > limits.max_decode_pixels * RGB_BYTES:
        # the cap bounds memory: a 4-band or 16-bit image of as many pixels costs more
        raise PayloadTooLarge(
            f"{name}: {width}x{height} in {image.mode} is over the decoding budget "
            f"({limits.max_decode_pixels} RGB pixels).",
            code="image_too_large",
        )
    try:
        if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width  # rotated by 90 degrees one way or the other
        if image_format == "JPEG":
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale when asked: far less work for big photos.
            image.draft("RGB", fit_within(image.width, image.height, limits.max_pixels))
        image.load()
        rgb = _to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(
            f"{name}: the image is corrupt or truncated.", code="media_unreadable"
        ) from exc
    if rgb.width * rgb.height > limits.max_pixels:
        rgb = rgb.resize(
            fit_within(rgb.width, rgb.height, limits.max_pixels), Image.Resampling.BICUBIC
        )
    rgb = pad_for_aspect(rgb)
    facts = ImageFacts(
        filename=filename,
        format=image_format,
        width=width,
        height=height,
        used_width=rgb.width,
        used_height=rgb.height,
    )
    return DecodedImage(image=rgb, facts=facts)


def audio_facts(audio: DecodedAudio, filename: str | None, used: bool) -> AudioFacts:
    return AudioFacts(
        filename=filename,
        codec=audio.codec,
        duration_s=round(audio.samples.size / audio.sample_rate, 3),
        sample_rate=audio.sample_rate,
        truncated=audio.truncated,
        used=used,
    )
