"""Composer settings, read from `COMPOSER_*` environment variables (or a `.env` file)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from weavewave_common.settings import ServiceSettings


class ComposerSettings(ServiceSettings):
    """Everything an operator can tune. Every client-controlled quantity has a cap here."""

    model_config = SettingsConfigDict(env_prefix="COMPOSER_", env_file=".env", extra="ignore")

    # Serving
    port: int = Field(8002, description="Port to listen on.")

    # Model
    backend: Literal["transformers", "audiocraft", "diffusers"] = Field(
        "transformers",
        description="transformers or audiocraft (MusicGen), or diffusers (ACE-Step).",
    )
    model: str = Field(
        "facebook/musicgen-small", description="Hub id or local folder of the checkpoint."
    )
    device: str = Field("cpu", description="Torch device: cpu, cuda, cuda:1 ...")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Weights dtype (float16 on GPUs)."
    )

    # Generation
    max_duration_s: float = Field(120.0, gt=0, description="Longest audio a request may ask for.")
    window_s: float = Field(30.0, gt=0, description="Audio generated in one pass, seconds.")
    extend_stride_s: float = Field(
        18.0, gt=0, description="New audio per continuation window beyond the first, seconds."
    )
    chunk_s: float = Field(0.5, gt=0, description="Audio per streamed chunk, seconds.")
    decode_context_s: float = Field(
        1.0, ge=0, description="Codec context decoded before each chunk, seconds."
    )

    # Batching and limits
    batch_window_ms: float = Field(
        50.0, ge=0, description="audiocraft only: how long a batch waits for more requests, ms."
    )
    max_batch_size: Annotated[int, Field(ge=1, le=128)] | Literal["auto"] = Field(
        "auto",
        description="Requests generated together (the engine's slots); auto: from free GPU "
        "memory on CUDA (composer/engine/sizing.py), 4 elsewhere.",
    )
    max_queue: int = Field(32, ge=1, description="Requests waiting before 503 Busy.")
    fixed_shapes: bool = Field(
        False, description="Engine steps on bucketed slot counts and whole-window caches."
    )
    cuda_graphs: bool | Literal["auto"] = Field(
        "auto",
        description="Capture the engine step in CUDA graphs (implies fixed shapes); auto: on "
        "CUDA devices.",
    )
    long_request_s: float = Field(
        60.0,
        ge=0,
        description="diffusers only: requests at least this long (s) run on a second model "
        "thread, so shorter ones never wait behind them (0: one thread for all).",
    )
    diffusion_steps: int = Field(
        8, ge=1, le=200, description="diffusers only: denoising steps per clip."
    )
    max_description_chars: int = Field(2000, ge=1, description="Longest description.")
    max_text_tokens: int = Field(
        512, ge=8, le=2048, description="Description tokens the model conditions on (truncated)."
    )
    max_melody_bytes: int = Field(20 * 1024 * 1024, description="Largest melody upload, bytes.")
    max_melody_seconds: float = Field(30.0, gt=0, description="Melody beyond this is ignored.")
    melody_stems: bool = Field(
        True, description="Melody checkpoints: chroma of the melody's non-drum stems (demucs)."
    )
    max_request_bytes: int = Field(32 * 1024 * 1024, description="Largest request body, bytes.")

    def graphs(self) -> bool:
        """Whether the engine captures CUDA graphs (`auto`: on CUDA devices)."""
        if self.cuda_graphs == "auto":
            return self.device.startswith("cuda")
        return self.cuda_graphs
