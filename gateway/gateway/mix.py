"""The video's own soundtrack kept under (or over) the music, for a muxed video.

`speech`: the original soundtrack as it is, plus the music ducked under its speech (the spans
the captioner found): a sidechain gain that falls `ATTACK_S` before each span to `depth_db`
and recovers over `RELEASE_S` after it. `all`: the original plus the music, undisturbed. Either
way the music is first brought to the original's integrated loudness (BS.1770), so it sits at
the level of what was there, and the sum is true-peak limited (in chunks, the limiter's
look-ahead taken back out: the soundtrack stays in sync with the picture to the sample).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import av
import numpy as np
import numpy.typing as npt

from gateway.protocol import KeepOriginal
from weavewave_common.audio import decode_audio_stream
from weavewave_common.errors import InvalidInput
from weavewave_common.loudness import PeakLimiter, loudness

Audio = npt.NDArray[np.float32]

ATTACK_S = 0.08
"""The music is on its way down this long before a voice starts (a fade, not a click)."""
RELEASE_S = 0.35
"""And comes back up over this long after it stops (no pumping between words)."""


def ducking_gain(
    length: int, rate: int, spans: list[tuple[float, float]], depth_db: float
) -> npt.NDArray[np.float32]:
    """Per-sample gain for the music: 1 away from speech, `depth_db` under it, with linear
    ramps in dB over `ATTACK_S` before each span and `RELEASE_S` after."""
    level_db = np.zeros(length, dtype=np.float32)
    times = np.arange(length, dtype=np.float64) / rate
    for start, end in spans:
        # the envelope of one span: 0 dB before the attack, depth over the span, 0 after release
        shape = np.interp(
            times,
            [start - ATTACK_S, start, end, end + RELEASE_S],
            [0.0, depth_db, depth_db, 0.0],
            left=0.0,
            right=0.0,
        ).astype(np.float32)
        np.minimum(level_db, shape, out=level_db)  # overlapping spans: the deeper one
    gain: npt.NDArray[np.float32] = np.power(10.0, level_db / 20.0, dtype=np.float32)
    return gain


def mixed(
    original: Audio,
    music: Audio,
    rate: int,
    keep: KeepOriginal,
    spans: list[tuple[float, float]],
    depth_db: float,
) -> Audio:
    """The soundtrack to mux: `music` alone (`none`), or with `original` as `keep` says; both
    [C, N] at `rate`, the result the music's length."""
    if keep is KeepOriginal.NONE:
        return music
    length = music.shape[1]
    original = original[:, :length]
    original = np.pad(original, ((0, 0), (0, length - original.shape[1])))
    theirs, ours = loudness(original, rate), loudness(music, rate)
    if np.isfinite(theirs) and np.isfinite(ours):
        music = music * np.float32(10 ** ((theirs - ours) / 20))
    if keep is KeepOriginal.SPEECH:
        music = music * ducking_gain(length, rate, spans, depth_db)[None, :]
    return _limited(original + music, rate)


LIMIT_CHUNK_S = 10.0
"""The limiter takes the mix this much at a time: its 4x oversampled peak estimate of a whole
two-minute stereo clip would take a quarter of a gigabyte at once."""


def _limited(samples: Audio, rate: int) -> Audio:
    """True-peak limited in chunks (the limiter streams: how the audio is cut changes nothing,
    and its output is the input's length, in step with it)."""
    limiter = PeakLimiter(rate, samples.shape[0])
    step = int(LIMIT_CHUNK_S * rate)
    pieces = [limiter.process(samples[:, i : i + step]) for i in range(0, samples.shape[1], step)]
    pieces.append(limiter.flush())
    return np.concatenate(pieces, axis=1).astype(np.float32, copy=False)


def _read_wav(path: Path) -> tuple[Audio, int]:
    with av.open(str(path), mode="r") as container:
        stream = container.streams.audio[0]
        rate = int(stream.rate)
        frames = [f.to_ndarray() for f in container.decode(stream)]
    samples = np.concatenate(frames, axis=1) if frames else np.zeros((1, 0))
    if samples.dtype == np.int16:
        return (samples.astype(np.float32) / 32768.0), rate
    return samples.astype(np.float32), rate


def _write_wav(path: Path, samples: Audio, rate: int) -> None:
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = layout
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        step = 4096
        for start in range(0, pcm.shape[1], step):
            chunk = np.ascontiguousarray(pcm[:, start : start + step].T.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def mix_soundtrack(
    video: IO[bytes],
    music_wav: Path,
    out_wav: Path,
    keep: KeepOriginal,
    spans: list[tuple[float, float]],
    depth_db: float,
) -> None:
    """`music_wav` mixed with `video`'s own soundtrack as `keep` says, written to `out_wav`."""
    music, rate = _read_wav(music_wav)
    channels = music.shape[0]
    try:
        video.seek(0)
        with av.open(video, mode="r") as container:
            if not container.streams.audio:  # nothing of its own to keep
                _write_wav(out_wav, music, rate)
                return
            decoded = decode_audio_stream(
                container, "video", rate, music.shape[1] / rate + 1.0, stereo=channels == 2
            )
    except av.error.FFmpegError as exc:
        raise InvalidInput(
            "video: its soundtrack cannot be read.", code="media_unreadable"
        ) from exc
    finally:
        video.seek(0)
    original = decoded.samples if decoded.samples.ndim == 2 else decoded.samples[None]
    _write_wav(out_wav, mixed(original, music, rate, keep, spans, depth_db), rate)
