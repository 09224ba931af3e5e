"""Cuts found in generated videos with known cuts, and cuts merged into sections."""

from __future__ import annotations

import io
import time

import av
import pytest

from captioner.media import MediaLimits
from captioner.scenes import (
    BEAT_TOLERANCE_S,
    SceneLimits,
    beat_offsets,
    plan_sections,
    scan_cuts,
    tempo_for_cuts,
)
from captioner.video import even_slices, sample_times, sample_video, section_slices
from tests.media_factory import scene_video_bytes

CUTS = [3.0, 7.5, 8.2, 13.1]


def scan(data: bytes, seconds: float) -> list[float]:
    with av.open(io.BytesIO(data), mode="r") as container:
        return scan_cuts(container, container.streams.video[0], seconds, SceneLimits()).cuts


@pytest.mark.parametrize(
    ("preset", "gop"),
    [("ultrafast", 20), ("veryfast", 20), ("ultrafast", 1), ("ultrafast", 250)],
    ids=["cuts-between-keyframes", "keyframes-on-cuts", "all-keyframes", "one-keyframe"],
)
def test_hard_cuts_are_found_to_the_frame(preset: str, gop: int) -> None:
    data = scene_video_bytes(CUTS, seconds=16, fps=10, gop=gop, preset=preset)
    assert scan(data, 16.0) == pytest.approx(CUTS, abs=1e-6)


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p10le"])
def test_cuts_are_found_in_other_pixel_formats(pix_fmt: str) -> None:
    """Planes read directly (4:4:4) and a 10-bit video converted first find the same cuts."""
    data = scene_video_bytes(CUTS, seconds=16, fps=10, gop=20, pix_fmt=pix_fmt)
    assert scan(data, 16.0) == pytest.approx(CUTS, abs=1e-6)


def test_motion_within_shots_is_not_decoded_frame_by_frame() -> None:
    """Shots that move throughout (each frame drifts a pixel) but keep their colours: only the
    keyframes, the stretch around the cut up to the cut, and the video's last stretch are
    decoded."""
    data = scene_video_bytes([9.0], seconds=16, fps=10, gop=20)
    with av.open(io.BytesIO(data), mode="r") as container:
        result = scan_cuts(container, container.streams.video[0], 16.0, SceneLimits())
    assert result.cuts == pytest.approx([9.0])
    keyframes, to_the_cut, last_stretch = 8, 11, 20
    assert result.frames_decoded <= keyframes + to_the_cut + last_stretch


def test_a_video_without_cuts_has_none() -> None:
    assert scan(scene_video_bytes([], seconds=10, fps=10, gop=20), 10.0) == []


def test_the_scan_stops_at_its_frame_budget() -> None:
    data = scene_video_bytes(CUTS, seconds=16, fps=10, gop=20)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        result = scan_cuts(container, stream, 16.0, SceneLimits(max_scan_frames=40))
    assert not result.complete
    assert result.frames_decoded <= 40
    assert result.cuts == [c for c in result.cuts if c in CUTS]


def test_the_sampler_reports_the_cuts_beside_its_frames() -> None:
    data = scene_video_bytes(CUTS, seconds=16, fps=10, gop=20)
    video = sample_video(
        io.BytesIO(data), "v.mp4", MediaLimits(max_frames=6), False, scenes=SceneLimits()
    )
    assert video.scan is not None and video.scan.cuts == pytest.approx(CUTS)
    assert video.facts("v.mp4", audio_used=False).cuts_found == 4
    plain = sample_video(io.BytesIO(data), "v.mp4", MediaLimits(max_frames=6), False)
    assert plain.scan is None and plain.facts(None, audio_used=False).cuts_found is None


def test_sections_keep_cuts_a_section_apart() -> None:
    assert plan_sections([], 30.0, 6.0, 8) == [(0.0, 30.0)]
    # 7.5-8.2 joins its shorter neighbour (3-7.5), then the short ends join theirs
    assert plan_sections([3.0, 7.5, 8.2, 13.1], 16.0, 4.0, 8) == [(0.0, 8.2), (8.2, 16.0)]
    assert plan_sections([10.0, 20.0], 30.0, 6.0, 8) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_a_short_video_is_one_section() -> None:
    assert plan_sections([1.0, 2.0], 4.0, 6.0, 8) == [(0.0, 4.0)]


def test_sections_are_capped_by_merging_the_shortest() -> None:
    sections = plan_sections([7.0, 14.0, 30.0, 37.0, 60.0], 80.0, 6.0, 3)
    assert len(sections) == 3
    assert sections[0][0] == 0.0 and sections[-1][1] == 80.0
    assert all(b > a for a, b in sections)


def test_ten_thousand_micro_scenes_merge_into_a_few_sections_quickly() -> None:
    cuts = [i * 0.06 for i in range(1, 10_000)]
    started = time.perf_counter()
    sections = plan_sections(cuts, 600.0, 6.0, 8)
    assert time.perf_counter() - started < 10  # a hang, not a benchmark
    assert len(sections) == 8
    assert all(b - a >= 6.0 for a, b in sections)
    inner = {a for a, _ in sections[1:]}
    assert inner <= set(cuts)
    assert [s[1] for s in sections[:-1]] == [s[0] for s in sections[1:]]


def test_the_tempo_moves_a_little_to_put_the_cuts_on_beats() -> None:
    # at 120 BPM a beat is 0.5 s: cuts at 6.0 and 12.5 are on beats, at 100 BPM (0.6 s) not
    choice = tempo_for_cuts([6.0, 12.5], 100)
    assert choice.on_beat == 2 and 85 <= choice.bpm <= 115
    assert all(o <= BEAT_TOLERANCE_S for o in beat_offsets([6.0, 12.5], choice.bpm))
    assert tempo_for_cuts([], 97).bpm == 97  # nothing to align: the model's tempo
    assert tempo_for_cuts([6.0], 120).bpm == 120  # already on a beat: unchanged
    far = tempo_for_cuts([7.3], 60)  # within 15 %: 51..69 BPM
    assert 51 <= far.bpm <= 69


def test_every_section_gets_frames_of_its_own() -> None:
    limits = MediaLimits(max_frames=8, frames_per_second=0.2)  # 12 s in all: 2 even samples
    plan = [(0.0, 6.0), (6.0, 7.0), (7.0, 12.0)]
    slices = section_slices(plan, 12.0, limits)
    assert len(slices) == 6  # two a section, within the cap
    for start, end in plan:
        assert sum(1 for a, b in slices if start <= a < b <= end) == 2
    assert [a for a, _ in slices[1:]] == pytest.approx([b for _, b in slices[:-1]], abs=0.002)
    assert section_slices([(0.0, 12.0)], 12.0, limits) == even_slices(12.0, limits)
    tight = MediaLimits(max_frames=2, frames_per_second=1.0)  # fewer frames than sections
    assert section_slices(plan, 12.0, tight) == even_slices(12.0, tight)
    wide = section_slices([(0.0, 30.0), (30.0, 36.0)], 36.0, MediaLimits(max_frames=12))
    assert len(wide) == 12 and sum(1 for a, _ in wide if a >= 30) >= 2


def test_even_slices_are_centred_on_the_sample_times() -> None:
    limits = MediaLimits(max_frames=6)
    centres = [(a + b) / 2 for a, b in even_slices(8.0, limits)]
    assert centres == pytest.approx(sample_times(8.0, limits))


def test_the_sampler_gives_each_section_of_a_video_its_frames() -> None:
    data = scene_video_bytes([6.0, 8.0], seconds=16, fps=10, gop=20)
    limits = MediaLimits(max_frames=8, frames_per_second=0.25)
    video = sample_video(
        io.BytesIO(data), "v.mp4", limits, False, scenes=SceneLimits(min_section_s=2)
    )
    assert video.scan is not None and video.scan.cuts == pytest.approx([6.0, 8.0])
    for start, end in [(0, 6), (6, 8), (8, 16)]:
        assert sum(1 for t in video.timestamps if start <= t < end) >= 2
