"""The captioner's audio path on a tiny Qwen2.5-Omni (the thinker: the real architecture and
processor settings, random weights): audio tokens are counted as the real processor counts
them, and an audio upload and a video's soundtrack reach the model through real vLLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from captioner.budget import AudioGeometry
from captioner.engine import EngineOptions, EngineRequest, VllmEngine
from captioner.prompts import PromptInputs, build_messages
from tests.captioner.conftest import SERVICE_ENV
from tests.captioner.test_service import brief_of, describe
from tests.media_factory import video_bytes, wav_bytes
from tooling.supervise import RunningService, free_port, run_service
from weavewave_common.errors import PayloadTooLarge


@pytest.fixture(scope="module")
def tiny_omni(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from captioner.tiny.omni import build

    return build(tmp_path_factory.mktemp("models") / "tiny-qwen2.5-omni")


@pytest.fixture(scope="module")
def processor(tiny_omni: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_omni)


def test_the_tiny_omni_keeps_the_real_checkpoints_audio_settings(processor: Any) -> None:
    assert AudioGeometry.of(processor) == AudioGeometry(sample_rate=16000, hop=160)
    assert processor.feature_extractor.feature_size == 128  # mel bins
    assert type(processor).__name__ == "Qwen2_5OmniProcessor"


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.37, 7.0, 60.0])
def test_audio_tokens_are_the_processors(processor: Any, seconds: float) -> None:
    hearing = AudioGeometry.of(processor)
    assert hearing is not None
    samples = int(seconds * 16000)
    template = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio"}]}], tokenize=False
    )
    ids = processor(text=[template], audio=[np.zeros(samples, np.float32)])["input_ids"][0]
    expanded = int(
        np.sum(np.asarray(ids) == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    )
    assert hearing.audio_tokens(samples, 16000) == expanded
    assert abs(expanded - 25 * seconds) <= 1  # 25 a second, as on the real checkpoint


def request_with(seconds: float) -> EngineRequest:
    clip = (np.zeros(int(seconds * 16000), np.float32), 16000)
    messages = build_messages(PromptInputs(user_prompt="hum", audio_clips=1))
    return EngineRequest("r", messages, audio=[clip], max_tokens=64)


def test_a_clip_that_overflows_the_context_is_a_413(processor: Any) -> None:
    options = EngineOptions(model="tiny", served_name="tiny", max_model_len=2048)
    engine = VllmEngine(None, processor, options, audio=True)
    assert engine._inputs(request_with(20))["multi_modal_data"]["audio"]  # 500 tokens fit
    with pytest.raises(PayloadTooLarge, match="CAPTIONER_MAX_MODEL_LEN"):
        engine._inputs(request_with(60))  # 1,500 do not
    deaf = VllmEngine(None, processor, options, audio=False)
    assert deaf.context_tokens("x", request_with(60)) < 100  # a model that cannot hear


@pytest.fixture(scope="module")
def hearing_captioner(
    tiny_omni: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    port = free_port()
    env = {**SERVICE_ENV, "CAPTIONER_MODEL": str(tiny_omni), "CAPTIONER_PORT": str(port)}
    log = tmp_path_factory.mktemp("logs") / "captioner-omni.log"
    with run_service("captioner", env, log, port, ready_timeout_s=300) as service:
        yield service


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_an_audio_upload_is_heard(hearing_captioner: RunningService) -> None:
    usage = []
    for seconds in (2.0, 6.0):
        files = [("audio", ("hum.wav", wav_bytes(seconds=seconds, rate=16000), "audio/wav"))]
        brief = brief_of(describe(hearing_captioner, data={"prompt": "hum"}, files=files))
        assert brief.media.audio is not None and brief.media.audio.used
        assert not any("cannot hear" in w for w in brief.warnings)
        usage.append(brief.usage.prompt_tokens / brief.usage.attempts)
    assert usage[1] - usage[0] >= 90  # four more seconds: about 100 more tokens a call


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_a_videos_soundtrack_is_heard(hearing_captioner: RunningService) -> None:
    clip = video_bytes(seconds=3, fps=10, with_audio=True)
    brief = brief_of(describe(hearing_captioner, files=[("video", ("v.mp4", clip, "video/mp4"))]))
    assert brief.media.video is not None and brief.media.video.audio_track_used


@pytest.mark.engine
@pytest.mark.timeout(600)
def test_a_clip_kept_from_the_model_is_reported_unheard(hearing_captioner: RunningService) -> None:
    files = [("audio", ("hum.wav", wav_bytes(seconds=2.0, rate=16000), "audio/wav"))]
    response = describe(hearing_captioner, data={"prompt": "hum", "hear": "false"}, files=files)
    brief = brief_of(response)
    assert brief.media.audio is not None and not brief.media.audio.used
    models = httpx.get(f"{hearing_captioner.url}/v1/models").json()["models"]
    assert models == [{"name": models[0]["name"], "hears_audio": True}]
