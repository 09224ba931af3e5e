"""Test media made in code: images with Pillow, video and audio with PyAV, hostile files by hand.

Nothing binary is committed; every file is generated from parameters, so each test says exactly
what it feeds the service.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image


def image_bytes(
    width: int = 320,
    height: int = 240,
    fmt: str = "PNG",
    mode: str = "RGB",
    seed: int = 0,
    exif_orientation: int | None = None,
) -> bytes:
    """A gradient-and-noise picture in the given format and mode."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            rng.integers(0, 255, (height, width, 1)).astype(np.float32),
        ],
        axis=2,
    )
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header declares huge dimensions (the IDAT holds almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def video_bytes(
    seconds: float = 3.0,
    fps: int = 10,
    width: int = 160,
    height: int = 120,
    gop: int | None = None,
    with_audio: bool = False,
    codec: str = "libx264",
    container_format: str = "mp4",
) -> bytes:
    """A video of moving colour bars (H.264 in MP4 by default; e.g. `libvpx` in `webm`, what
    browsers record), optionally with a sine soundtrack."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast"} if codec == "libx264" else {}
        audio: Any = None
        if with_audio:
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
        total = int(round(seconds * fps))
        xs = np.arange(width, dtype=np.int32)[None, :]
        for i in range(total):
            shade = ((xs + i * 7) % 256).astype(np.uint8)
            frame = np.stack(
                [
                    np.broadcast_to(shade, (height, width)),
                    np.full((height, width), (i * 11) % 256, np.uint8),
                    np.broadcast_to(255 - shade, (height, width)),
                ],
                axis=2,
            )
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
        if audio is not None:
            _write_sine(container, audio, seconds, 16000)
    return buffer.getvalue()


def _write_sine(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float, rate: int
) -> None:
    samples = int(seconds * rate)
    step = 1024
    for start in range(0, samples, step):
        n = min(step, samples - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        data = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def wav_bytes(seconds: float = 2.0, rate: int = 22050, freq: float = 440.0) -> bytes:
    """A 16-bit mono WAV sine tone (stdlib `wave`)."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


SCENE_PALETTE = (
    (200, 40, 40),
    (30, 160, 60),
    (40, 60, 210),
    (220, 200, 40),
    (150, 40, 180),
    (30, 190, 200),
    (240, 140, 30),
    (90, 90, 90),
)


def scene_frame(scene: int, index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` of shot `scene`: the shot's colour, a gradient whose direction is the
    shot's own, drifting a pixel a frame (motion within a shot, a new picture at a cut)."""
    base = np.array(SCENE_PALETTE[scene % len(SCENE_PALETTE)], dtype=np.float32)
    vertical = scene % 2 == 0
    along = np.arange(height if vertical else width, dtype=np.float32) + scene * 37 + index
    wave = 0.6 + 0.4 * np.sin(along / (40 + 15 * (scene % 3)))
    shade = (base[None, :] * wave[:, None]).astype(np.uint8)
    if vertical:
        return np.ascontiguousarray(np.broadcast_to(shade[:, None, :], (height, width, 3)))
    return np.ascontiguousarray(np.broadcast_to(shade[None, :, :], (height, width, 3)))


def scene_video_bytes(
    cuts: list[float],
    seconds: float,
    fps: int = 10,
    width: int = 160,
    height: int = 120,
    gop: int | None = None,
    preset: str = "ultrafast",
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    pix_fmt: str = "yuv420p",
) -> bytes:
    """An H.264 MP4 whose shots change at `cuts` (seconds; each lands on the first frame at or
    after it), optionally with `audio` (mono float samples at `audio_rate`) as its soundtrack.
    `preset=ultrafast` puts no keyframe on the cuts (x264's scenecut is off), slower presets do."""
    buffer = io.BytesIO()
    bounds = sorted(cuts)
    with av.open(buffer, mode="w", format="mp4") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        stream.options = {"preset": preset}
        sound: Any = None
        if audio is not None:
            sound = container.add_stream("aac", rate=audio_rate)
            sound.layout = "mono"
        for i in range(int(round(seconds * fps))):
            scene = sum(1 for c in bounds if i >= c * fps - 1e-6)
            image = scene_frame(scene, i, width, height)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None and audio is not None:
            _write_samples(container, sound, audio.astype(np.float32), audio_rate)
    return buffer.getvalue()


def _write_samples(
    container: av.container.OutputContainer, stream: Any, samples: np.ndarray, rate: int
) -> None:
    step = 1024
    for start in range(0, len(samples), step):
        chunk = np.ascontiguousarray(samples[start : start + step][None, :])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def spoken(text: str, rate: int = 16000) -> np.ndarray:
    """`text` read aloud by espeak-ng (a Debian package: synthesised speech, no recording
    committed), mono float samples at `rate`."""
    import shutil
    import subprocess

    program = shutil.which("espeak-ng")
    if program is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run([program, "--stdout", text], check=True, capture_output=True).stdout
    with av.open(io.BytesIO(wav), mode="r") as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces = [
            out.to_ndarray()[0]
            for frame in container.decode(audio=0)
            for out in resampler.resample(frame)
        ]
        pieces += [out.to_ndarray()[0] for out in resampler.resample(None)]
    samples: np.ndarray = np.concatenate(pieces).astype(np.float32)
    return samples


def soundtrack_with_speech(
    seconds: float, spans: list[tuple[float, str]], rate: int = 16000
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A soundtrack of `seconds`: silence but for each (start, text) read aloud from start;
    returns the samples and where each reading really is (start, end seconds)."""
    track = np.zeros(int(seconds * rate), dtype=np.float32)
    where = []
    for start, text in spans:
        voice = spoken(text, rate)
        voice = voice * np.float32(0.5 / max(1e-6, float(np.abs(voice).max())))
        first = int(start * rate)
        voice = voice[: len(track) - first]
        track[first : first + len(voice)] += voice
        nonzero = np.flatnonzero(np.abs(voice) > 1e-3)
        where.append(((first + nonzero[0]) / rate, (first + nonzero[-1]) / rate))
    return track, where


def click_track(bpm: float, seconds: float, rate: int = 22050) -> np.ndarray:
    """Clicks (a 1 kHz blip, decaying in 20 ms) on every beat at `bpm`, the downbeat louder:
    audio whose tempo is known exactly."""
    samples = np.zeros(int(seconds * rate), np.float32)
    blip_n = int(0.02 * rate)
    blip = np.sin(2 * math.pi * 1000 * np.arange(blip_n) / rate) * np.exp(-np.arange(blip_n) / 200)
    for beat in range(int(seconds * bpm / 60)):
        start = int(beat * 60 / bpm * rate)
        if start + blip_n <= len(samples):
            samples[start : start + blip_n] += blip * (1.0 if beat % 4 == 0 else 0.6)
    return samples


def cadence(tonic: int, minor: bool, seconds: float, rate: int = 22050) -> np.ndarray:
    """Chords I-IV-V-I (i-iv-V-i in minor) over a bass, twice, in the key `tonic` semitones
    above C: audio whose key is known. Each note has its first three harmonics and decays."""
    third = 3 if minor else 4
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)] * 2
    length = int(seconds / len(chords) * rate)
    t = np.arange(length) / rate

    def note(midi: int) -> np.ndarray:
        freq = 440 * 2 ** ((midi - 69) / 12)
        harmonics = sum(np.sin(2 * math.pi * freq * h * t) / h for h in (1, 2, 3))
        return np.asarray(harmonics * np.exp(-t * 1.5))

    parts = [sum(note(60 + tonic + n) for n in c) + note(48 + tonic + c[0]) for c in chords]
    samples = np.concatenate(parts).astype(np.float32)
    return np.asarray(0.5 * samples / np.abs(samples).max(), dtype=np.float32)


def wav_of(samples: np.ndarray, rate: int) -> bytes:
    """`samples` (mono float in [-1, 1]) as a 16-bit WAV."""
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()
