"""Muxing's own checks (`gateway/mux.py`): a video whose picture cannot go into MP4 is refused
before any work, not found out after the music while the response is under way."""

from __future__ import annotations

import io

import pytest

from gateway.mux import check_muxable
from tests.media_factory import video_bytes
from weavewave_common.errors import UnsupportedMedia


def test_a_vp8_webm_is_refused_before_any_work() -> None:
    """Before: `mux=true` with a VP8 WebM (a browser's recording) answered 200, then broke the
    body when the copy into MP4 failed."""
    webm = io.BytesIO(video_bytes(seconds=0.5, codec="libvpx", container_format="webm"))
    with pytest.raises(UnsupportedMedia) as refused:
        check_muxable(webm)
    assert refused.value.code == "video_not_muxable" and "vp8" in refused.value.message


@pytest.mark.parametrize(
    ("codec", "container"), [("libx264", "mp4"), ("libvpx-vp9", "webm"), ("mpeg4", "mp4")]
)
def test_codecs_mp4_can_carry_pass(codec: str, container: str) -> None:
    video = io.BytesIO(video_bytes(seconds=0.5, codec=codec, container_format=container))
    check_muxable(video)
    assert video.tell() == 0  # left at the start for the composer and the muxer
