"""Media decoding under caps, on files generated here (Pillow, PyAV)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable

import pytest
from PIL import Image

from captioner.media import MediaLimits, decode_image, fit_within
from captioner.video import sample_times, sample_video
from tests.media_factory import image_bytes, png_bomb, video_bytes, wav_bytes
from weavewave_common.audio import decode_audio
from weavewave_common.errors import ApiError
from weavewave_common.uploads import Upload

LIMITS = MediaLimits(max_pixels=224 * 224, max_frames=8, max_frame_pixels=112 * 112)


def status_of(call: object) -> int:
    with pytest.raises(ApiError) as caught:
        call()  # type: ignore[operator]
    return caught.value.status


def test_fit_within_keeps_aspect_and_cap() -> None:
    assert fit_within(100, 50, 10_000) == (100, 50)
    width, height = fit_within(4000, 3000, 224 * 224)
    assert width * height <= 224 * 224
    assert abs(width / height - 4 / 3) < 0.02


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("JPEG", "CMYK"),
        ("JPEG", "L"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "CMYK"),
    ],
)
def test_images_become_rgb(fmt: str, mode: str) -> None:
    decoded = decode_image(io.BytesIO(image_bytes(64, 48, fmt, mode)), "x", LIMITS)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (64, 48)
    assert decoded.facts.format == fmt


def test_transparent_pixels_become_white() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buffer, format="PNG")
    decoded = decode_image(io.BytesIO(buffer.getvalue()), "clear.png", LIMITS)
    assert decoded.image.getpixel((4, 4)) == (255, 255, 255)


def test_exif_rotation_is_applied() -> None:
    data = image_bytes(80, 40, "JPEG", exif_orientation=6)
    decoded = decode_image(io.BytesIO(data), "rotated.jpg", LIMITS)
    assert decoded.image.size == (40, 80)
    assert (decoded.facts.width, decoded.facts.height) == (40, 80)


def test_large_images_are_downscaled() -> None:
    decoded = decode_image(io.BytesIO(image_bytes(1600, 1200, "JPEG")), "big.jpg", LIMITS)
    assert decoded.image.width * decoded.image.height <= LIMITS.max_pixels
    assert (decoded.facts.width, decoded.facts.height) == (1600, 1200)
    assert (decoded.facts.used_width, decoded.facts.used_height) == decoded.image.size


def test_bad_images_are_refused_with_the_right_status() -> None:
    assert status_of(lambda: decode_image(io.BytesIO(png_bomb()), "bomb.png", LIMITS)) == 413
    small_cap = MediaLimits(max_decode_pixels=1000)
    big = io.BytesIO(image_bytes(100, 100))
    assert status_of(lambda: decode_image(big, "big.png", small_cap)) == 413
    garbage = io.BytesIO(b"not an image at all" * 10)
    assert status_of(lambda: decode_image(garbage, "x.png", LIMITS)) == 415
    truncated = io.BytesIO(image_bytes(200, 200, "PNG")[:400])
    assert status_of(lambda: decode_image(truncated, "t.png", LIMITS)) in (415, 422)
    assert status_of(lambda: decode_image(io.BytesIO(b""), "empty.png", LIMITS)) == 415


def png_of(mode: str, width: int, height: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def test_the_decode_cap_bounds_bytes_not_only_pixels() -> None:
    """Before: a 49 MP RGBA PNG (under the 50 MP cap) cost +795 MB to decode; four of them,
    3.1 GB. The cap is a budget of RGB pixels: four bytes a pixel counts as 4/3 of one."""
    cap = MediaLimits(max_pixels=224 * 224, max_decode_pixels=10_000)
    assert decode_image(png_of("RGB", 100, 95), "rgb.png", cap).facts.width == 100
    assert status_of(lambda: decode_image(png_of("RGBA", 100, 95), "rgba.png", cap)) == 413
    assert decode_image(png_of("RGBA", 80, 80), "small.png", cap).image.mode == "RGB"
    assert decode_image(png_of("L", 100, 95), "grey.png", cap).facts.width == 100


def test_sample_times_are_even_and_capped() -> None:
    assert len(sample_times(3.0, LIMITS)) == 3
    assert len(sample_times(600.0, LIMITS)) == LIMITS.max_frames
    assert len(sample_times(0.2, LIMITS)) == 2
    times = sample_times(8.0, LIMITS)
    assert times == pytest.approx([0.5 + i for i in range(8)])


def test_video_is_sampled_evenly_and_downscaled() -> None:
    data = video_bytes(seconds=6, fps=10, width=320, height=240, gop=10)
    video = sample_video(io.BytesIO(data), "clip.mp4", LIMITS, want_audio=False)
    assert len(video.timestamps) == 6
    assert video.duration_s == pytest.approx(6.0, abs=0.1)
    assert video.timestamps == sorted(set(video.timestamps))
    # each sample lies within half an interval of its slot centre (0.5 s, 1.5 s, ...)
    for slot, stamp in enumerate(video.timestamps):
        assert abs(stamp - (slot + 0.5)) <= 0.5 + 1e-6
    assert video.frames.shape[0] % 2 == 0
    assert video.frames.shape[1] * video.frames.shape[2] <= LIMITS.max_frame_pixels
    assert video.metadata["total_num_frames"] == video.frames.shape[0]
    assert video.metadata["duration"] == pytest.approx(6.0, abs=0.1)


def test_long_video_uses_at_most_max_frames() -> None:
    data = video_bytes(seconds=20, fps=5, gop=5)
    video = sample_video(io.BytesIO(data), "long.mp4", LIMITS, want_audio=False)
    assert len(video.timestamps) == LIMITS.max_frames


def test_frames_span_a_clip_with_a_single_keyframe() -> None:
    """Before: with one keyframe, a seek landed at the start for every sample and gave up
    after 120 decoded frames, so all samples of a long clip fell within its first minute."""
    data = video_bytes(seconds=300, fps=2, width=64, height=48, gop=100_000)
    video = sample_video(io.BytesIO(data), "one-key.mp4", LIMITS, want_audio=False)
    times = sample_times(300.0, LIMITS)
    half = 300.0 / len(times) / 2
    assert len(video.timestamps) == len(times) and video.seen_until_s is None
    for stamp, t in zip(video.timestamps, times, strict=True):
        assert t - half <= stamp <= t + half, (stamp, t)


def test_a_clip_past_the_decode_budget_is_seen_in_part_and_says_so() -> None:
    data = video_bytes(seconds=300, fps=10, width=64, height=48, gop=100_000)
    video = sample_video(io.BytesIO(data), "one-key.mp4", LIMITS, want_audio=False)
    times = sample_times(300.0, LIMITS)
    half = 300.0 / len(times) / 2
    assert video.seen_until_s is not None and video.seen_until_s < 300
    assert 2 <= len(video.timestamps) < len(times)
    for stamp, t in zip(video.timestamps, times, strict=False):
        assert t - half <= stamp <= t + half, (stamp, t)  # what was seen is where it should be


def test_soundtrack_is_decoded_only_when_wanted() -> None:
    data = video_bytes(seconds=2, fps=10, with_audio=True)
    muted = sample_video(io.BytesIO(data), "a.mp4", LIMITS, want_audio=False)
    heard = sample_video(io.BytesIO(data), "a.mp4", LIMITS, want_audio=True)
    assert muted.has_audio_track and muted.soundtrack is None
    assert heard.soundtrack is not None
    assert heard.soundtrack.sample_rate == LIMITS.audio_sample_rate
    assert heard.soundtrack.samples.size / LIMITS.audio_sample_rate == pytest.approx(2.0, abs=0.1)


def test_bad_videos_are_refused() -> None:
    too_long = MediaLimits(max_video_seconds=2.0)
    clip = video_bytes(seconds=3, fps=5)
    assert status_of(lambda: sample_video(io.BytesIO(clip), "v", too_long, False)) == 413
    truncated = io.BytesIO(clip[: len(clip) // 3])
    assert status_of(lambda: sample_video(truncated, "t.mp4", LIMITS, False)) in (415, 422)
    picture = io.BytesIO(image_bytes(32, 32))
    assert status_of(lambda: sample_video(picture, "p.png", LIMITS, False)) == 415
    sound = io.BytesIO(wav_bytes(1.0))
    assert status_of(lambda: sample_video(sound, "s.wav", LIMITS, False)) == 415


def test_audio_is_resampled_and_capped() -> None:
    audio = decode_audio(io.BytesIO(wav_bytes(seconds=2.0, rate=22050)), "a.wav", 16000, 60)
    assert audio.sample_rate == 16000
    assert audio.samples.size == pytest.approx(32000, abs=400)
    assert not audio.truncated
    capped = decode_audio(io.BytesIO(wav_bytes(3.0)), "a.wav", 16000, 1.0)
    assert capped.truncated and capped.samples.size == 16000


def test_bad_audio_is_refused() -> None:
    assert status_of(lambda: decode_audio(io.BytesIO(wav_bytes(0.0)), "e.wav", 16000, 60)) == 422
    assert status_of(lambda: decode_audio(io.BytesIO(b"\x00" * 100), "z.wav", 16000, 60)) == 415
    silent_video = io.BytesIO(video_bytes(seconds=1, fps=5))
    assert status_of(lambda: decode_audio(silent_video, "v.mp4", 16000, 60)) == 415


def test_an_elongated_video_is_padded_into_the_processors_ratio() -> None:
    data = video_bytes(seconds=2, fps=10, width=1600, height=6)
    video = sample_video(io.BytesIO(data), "strip.mp4", LIMITS, want_audio=False)
    height, width = video.frames.shape[1:3]
    assert width / height <= 200 and width >= 1600 * 0.5


def test_a_decode_ends_soon_after_its_caller_is_cancelled() -> None:
    """Before: a client that left 2 s into a long audio decode left the captioner decoding
    for ~9 s more (a worker thread nothing could stop). Now the thread is told, and checks
    between frames."""
    from captioner.describe import DescribeInput, DescribeLimits, Describer
    from tests.captioner.test_brief_chain import ScriptedEngine

    long_clip = wav_bytes(seconds=600.0, rate=96000)  # about two seconds to decode here
    ended: list[float] = []
    describer = Describer(ScriptedEngine(), MediaLimits(max_audio_seconds=600), DescribeLimits())
    original = describer._decode

    def timed(request: DescribeInput, stop: Callable[[], bool]) -> object:
        try:
            return original(request, stop)
        finally:
            ended.append(time.monotonic())

    describer._decode = timed  # type: ignore[method-assign,assignment]
    request = DescribeInput(audio=Upload(io.BytesIO(long_clip), "long.wav", len(long_clip)))

    async def leave_early() -> float:
        task = asyncio.ensure_future(describer._decoded(request))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    cancelled = asyncio.run(leave_early())
    deadline = time.monotonic() + 10
    while not ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ended and ended[0] - cancelled < 0.25  # the thread stopped at once


def test_decodes_at_once_are_bounded() -> None:
    """Before: every request decoded at once (four 49 MP images took +3.1 GB together); now at
    most `max_concurrent_decodes` run, the others wait their turn."""
    from captioner.describe import DescribeInput, DescribeLimits, Describer
    from tests.captioner.test_brief_chain import ScriptedEngine

    clip = wav_bytes(seconds=120.0, rate=48000)
    spans: list[tuple[float, float]] = []
    limits = DescribeLimits(max_concurrent_decodes=1)
    describer = Describer(ScriptedEngine(), MediaLimits(max_audio_seconds=600), limits)
    original = describer._decode

    def timed(request: DescribeInput, stop: Callable[[], bool]) -> object:
        started = time.monotonic()
        try:
            return original(request, stop)
        finally:
            spans.append((started, time.monotonic()))

    describer._decode = timed  # type: ignore[method-assign,assignment]

    async def three_at_once() -> None:
        requests = [
            DescribeInput(audio=Upload(io.BytesIO(clip), f"{n}.wav", len(clip))) for n in range(3)
        ]
        await asyncio.gather(*(describer._decoded(r) for r in requests))

    asyncio.run(three_at_once())
    spans.sort()
    assert len(spans) == 3
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
