"""Where a soundtrack speaks (Silero VAD, offline), on speech synthesised by espeak-ng."""

from __future__ import annotations

import io

import numpy as np
import pytest

from captioner.media import MediaLimits
from captioner.speech import speech_spans
from captioner.video import sample_video
from tests.media_factory import scene_video_bytes, soundtrack_with_speech

LINES = [
    (1.0, "The kitchen was quiet this morning."),
    (7.0, "And then everything changed at once, and we ran."),
]


def test_the_spoken_spans_are_found_and_silence_and_tones_are_not_speech() -> None:
    track, truth = soundtrack_with_speech(12.0, LINES)
    spans = speech_spans(track)
    assert len(spans) == 2
    for (start, end), (true_start, true_end) in zip(spans, truth, strict=True):
        assert start == pytest.approx(true_start, abs=0.3)
        assert end == pytest.approx(true_end, abs=0.4)
    t = np.arange(16000 * 5) / 16000
    chord = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)).astype(
        np.float32
    )
    assert speech_spans(chord) == []
    assert speech_spans(np.zeros(16000 * 3, dtype=np.float32)) == []


def test_a_videos_speech_is_reported_only_when_asked() -> None:
    track, _ = soundtrack_with_speech(12.0, LINES)
    data = scene_video_bytes([], seconds=12, audio=track)
    limits = MediaLimits(max_frames=4)
    video = sample_video(io.BytesIO(data), "v.mp4", limits, False, speech=True)
    facts = video.facts("v.mp4", audio_used=False)
    assert facts.speech is not None and len(facts.speech) == 2
    assert sample_video(io.BytesIO(data), "v.mp4", limits, False).facts(None, False).speech is None
    silent = sample_video(
        io.BytesIO(scene_video_bytes([], seconds=3)), "s.mp4", limits, False, speech=True
    )
    assert silent.facts(None, audio_used=False).speech is None  # no soundtrack to look in
