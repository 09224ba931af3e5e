"""Captioner settings, read from `CAPTIONER_*` environment variables (or a `.env` file)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from weavewave_common.protocol import SECTIONS_MAX
from weavewave_common.settings import ServiceSettings


class CaptionerSettings(ServiceSettings):
    """Everything an operator can tune. Every client-controlled quantity has a cap here."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONER_", env_file=".env", extra="ignore")

    # Serving
    port: int = Field(8001, description="Port to listen on.")

    # Model and engine
    model: str = Field(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        description="Hub id or local folder of a vLLM-supported vision-language model.",
    )
    served_model_name: str | None = Field(None, description="Name reported in briefs.")
    dtype: str = Field("auto", description="Weights dtype: auto, bfloat16, float16, float32.")
    max_model_len: int = Field(
        20480, ge=512, description="Context length in tokens (fits every input cap at once)."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may take."
    )
    cpu_kv_cache_gib: int = Field(4, ge=1, description="KV cache size on CPU hosts, GiB.")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs / torch.compile.")
    exit_on_load_failure: bool = Field(
        True, description="Exit non-zero when the model fails to load (false: keep serving 503)."
    )
    max_num_seqs: int = Field(8, ge=1, description="Sequences the engine batches together.")
    audio_input: Literal["auto", "on", "off"] = Field(
        "auto", description="Give audio to the model: auto = when its architecture takes audio."
    )

    # Generation
    max_tokens: int = Field(256, ge=32, le=2048, description="Token budget for one brief.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")

    # Input limits
    max_request_bytes: int = Field(
        512 * 1024 * 1024, description="Largest request body accepted, bytes."
    )
    max_prompt_chars: int = Field(2000, ge=1, description="Longest user prompt, characters.")
    max_images: int = Field(8, ge=0, description="Images per request.")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest image upload, bytes.")
    max_decode_pixels: int = Field(
        50_000_000, description="Largest image (width x height) decoded at all."
    )
    max_pixels: int = Field(
        1280 * 28 * 28, description="Images are downscaled to at most this many pixels."
    )
    max_video_bytes: int = Field(500 * 1024 * 1024, description="Largest video upload, bytes.")
    max_video_seconds: float = Field(600.0, gt=0, description="Longest video accepted, seconds.")
    max_frames: int = Field(32, ge=2, description="Most video frames given to the model.")
    frames_per_second: float = Field(1.0, gt=0, description="Video sampling rate before the cap.")
    max_frame_pixels: int = Field(
        360 * 640, description="Video frames are downscaled to at most this many pixels."
    )
    min_section_s: float = Field(
        6.0, gt=0, description="A video's shortest section: cuts closer are merged."
    )
    max_sections: int = Field(
        8, ge=1, le=SECTIONS_MAX, description="Most sections a video is scored in."
    )
    max_scan_frames: int = Field(
        36_000,
        ge=1,
        description="Most frames decoded to find a video's cuts (the rest is one section).",
    )
    max_audio_bytes: int = Field(50 * 1024 * 1024, description="Largest audio upload, bytes.")
    max_audio_seconds: float = Field(
        60.0, gt=0, description="Audio beyond this many seconds is ignored."
    )
    audio_sample_rate: int = Field(16000, description="Audio is resampled to this rate, Hz.")
    max_pending: int = Field(32, ge=1, description="Requests in flight before 503 Busy.")
    max_concurrent_decodes: int = Field(
        2, ge=1, description="Requests decoding media at once (each may take hundreds of MB)."
    )

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model
