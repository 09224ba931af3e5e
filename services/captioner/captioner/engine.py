"""The model behind the captioner: a two-method interface and its vLLM implementation.

`VllmEngine` drives vLLM's in-process async engine (`AsyncLLM`): it renders the chat with the
model's own template, attaches the decoded media as `multi_modal_data`, and constrains the output
with a JSON schema when asked. vLLM batches concurrent requests itself (continuous batching).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
import numpy as np
import numpy.typing as npt
from PIL import Image

from captioner import metrics
from captioner.budget import AudioGeometry, VisionGeometry
from captioner.prompts import ChatMessage, defused_messages
from weavewave_common.errors import InvalidInput, PayloadTooLarge, ServiceUnavailable

logger = logging.getLogger(__name__)

AUDIO_ARCHITECTURE_MARKERS = ("Omni", "Audio", "Phi4MM", "Gemma3n")


@dataclass(frozen=True)
class EngineOptions:
    """How to load the model (built from the service settings by the app)."""

    model: str
    served_name: str
    dtype: str = "auto"
    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    cpu_kv_cache_gib: int = 4
    enforce_eager: bool = False
    max_num_seqs: int = 8
    max_images: int = 8
    audio_input: Literal["auto", "on", "off"] = "auto"
    max_pixels: int | None = None
    """The most pixels the service sends per image: vLLM sizes its memory profiling for it."""


@dataclass(frozen=True)
class EngineRequest:
    """One generation: the chat, its media, and frozen sampling settings."""

    request_id: str
    messages: list[ChatMessage]
    images: list[Image.Image] = field(default_factory=list)
    video: tuple[npt.NDArray[np.uint8], dict[str, Any]] | None = None
    """Frames [T, H, W, 3] and the metadata the processor needs."""
    audio: list[tuple[npt.NDArray[np.float32], int]] = field(default_factory=list)
    """(samples [N], sample rate in Hz) per clip; only for audio-capable models."""
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 256
    temperature: float = 0.7
    seed: int | None = None


@dataclass(frozen=True)
class EngineOutput:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class CaptionEngine(Protocol):
    """What the describer needs from a model."""

    @property
    def model_name(self) -> str: ...

    @property
    def accepts_audio(self) -> bool: ...

    @property
    def failure(self) -> str | None:
        """Why the engine can serve no more (its core process died), or None."""

    async def generate(self, request: EngineRequest) -> EngineOutput: ...


def model_accepts_audio(architectures: list[str], setting: str) -> bool:
    """Whether to give audio to the model: forced by the setting, or judged by architecture."""
    if setting != "auto":
        return setting == "on"
    return any(marker in arch for arch in architectures for marker in AUDIO_ARCHITECTURE_MARKERS)


def special_tokens(tokenizer: Any) -> list[str]:
    """Every control token the tokenizer parses out of text: the named ones and every added
    token marked special (`<|im_start|>`, `<|vision_start|>`, `<|AUDIO|>` …)."""
    named = set(getattr(tokenizer, "all_special_tokens", []))
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    named.update(str(token.content) for token in added.values() if getattr(token, "special", False))
    return sorted(named)


class VllmEngine:
    """`CaptionEngine` over vLLM's `AsyncLLM`."""

    def __init__(self, llm: Any, chat_renderer: Any, options: EngineOptions, audio: bool) -> None:
        self._llm = llm
        self._renderer = chat_renderer
        self._options = options
        self._audio = audio
        self._vision = VisionGeometry.of(chat_renderer)
        self._hearing = AudioGeometry.of(chat_renderer) if audio else None
        self._tokenizer = getattr(chat_renderer, "tokenizer", chat_renderer)
        self._specials = special_tokens(self._tokenizer)

    @property
    def model_name(self) -> str:
        return self._options.served_name

    @property
    def accepts_audio(self) -> bool:
        return self._audio

    @property
    def failure(self) -> str | None:
        if not self._llm.errored:
            return None
        return f"the engine core has died: {self._llm.dead_error}"

    def _sampling_params(self, request: EngineRequest) -> Any:
        from vllm.sampling_params import SamplingParams, StructuredOutputsParams

        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema)
        return SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.seed,
            structured_outputs=structured,
        )

    def context_tokens(self, prompt: str, request: EngineRequest) -> int:
        """The prompt's tokens once vLLM has expanded each media placeholder into the
        processor's tokens for it (audio counted for Qwen2.5-Omni's encoder)."""
        tokens = len(self._tokenizer(prompt)["input_ids"])
        if self._hearing is not None:
            for samples, rate in request.audio:
                tokens += self._hearing.audio_tokens(len(samples), rate) - 1
        if self._vision is None:
            return tokens
        for image in request.images:
            tokens += self._vision.image_tokens(image.width, image.height) - 1
        if request.video is not None:
            frames = request.video[0]
            count, height, width = (int(n) for n in frames.shape[:3])
            tokens += self._vision.video_tokens(count, width, height) - 1
        return tokens

    def _check_budget(self, prompt: str, request: EngineRequest) -> None:
        cap = self._options.max_model_len
        needed = self.context_tokens(prompt, request) + request.max_tokens
        if needed > cap:
            raise PayloadTooLarge(
                f"The prompt and media need {needed} tokens with the brief's "
                f"{request.max_tokens}, over the model's context of {cap} "
                "(CAPTIONER_MAX_MODEL_LEN): send fewer or smaller images, or shorter video or "
                "audio.",
                code="context_too_long",
            )

    def _inputs(self, request: EngineRequest) -> dict[str, Any]:
        prompt = self._renderer.apply_chat_template(
            defused_messages(request.messages, self._specials),
            tokenize=False,
            add_generation_prompt=True,
        )
        self._check_budget(prompt, request)
        media: dict[str, Any] = {}
        if request.images:
            media["image"] = list(request.images)
        if request.video is not None:
            media["video"] = [request.video]
        if request.audio:
            media["audio"] = list(request.audio)
        return {"prompt": prompt, "multi_modal_data": media} if media else {"prompt": prompt}

    async def generate(self, request: EngineRequest) -> EngineOutput:
        """Run one request to completion; aborts it in the engine if the caller is cancelled.

        The engine's id is this call's own: a caller's id (the client's `X-Request-ID`, kept for
        logs) may be sent twice at once, and vLLM aborts every request under an id it is given.
        """
        from vllm.exceptions import VLLMClientError

        params = self._sampling_params(request)
        inputs = self._inputs(request)
        engine_id = f"{request.request_id}-{uuid.uuid4().hex[:16]}"
        final = None
        try:
            async for output in self._llm.generate(inputs, params, request_id=engine_id):
                final = output
        except (asyncio.CancelledError, GeneratorExit):
            await self._llm.abort(engine_id)
            raise
        except (VLLMClientError, ValueError) as exc:  # input validation: the request's fault
            logger.warning("the engine refused the request: %s", exc)
            raise InvalidInput(
                f"The model cannot take these inputs: {exc}", code="engine_rejected"
            ) from exc
        if final is None or not final.outputs:
            return EngineOutput("", 0, 0, None)
        completion = final.outputs[0]
        metrics.GENERATIONS.labels(completion.finish_reason or "none").inc()
        if completion.finish_reason == "abort":  # not by this caller: it would be cancelled
            raise ServiceUnavailable("The engine stopped this request; retry.", retry_after_s=1)
        return EngineOutput(
            text=completion.text,
            prompt_tokens=len(final.prompt_token_ids or ()),
            completion_tokens=len(completion.token_ids),
            finish_reason=completion.finish_reason,
        )


def _build_llm(options: EngineOptions, audio: bool, processor_kwargs: dict[str, Any]) -> Any:
    """Construct `AsyncLLM` (blocking: loads weights, profiles memory, starts the core process)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    limits = {"image": options.max_images, "video": 1}
    if audio:
        limits["audio"] = 2  # the uploaded clip and the video's soundtrack
    args = AsyncEngineArgs(
        model=options.model,
        served_model_name=[options.served_name],
        dtype=options.dtype,
        max_model_len=options.max_model_len,
        gpu_memory_utilization=options.gpu_memory_utilization,
        enforce_eager=options.enforce_eager,
        max_num_seqs=options.max_num_seqs,
        limit_mm_per_prompt=limits,
        mm_processor_kwargs=processor_kwargs or None,
        disable_log_stats=True,
    )
    return AsyncLLM.from_engine_args(args)


def _load_chat_renderer(model: str) -> Any:
    """The model's processor (it carries the chat template); its tokenizer when there is none."""
    from transformers import AutoProcessor, AutoTokenizer

    try:
        processor = AutoProcessor.from_pretrained(model)
        if getattr(processor, "chat_template", None):
            return processor
    except (OSError, ValueError) as exc:
        logger.info("no processor for %s (%s); using its tokenizer's chat template", model, exc)
    return AutoTokenizer.from_pretrained(model)


def _architectures(model: str) -> list[str]:
    from transformers import AutoConfig

    return list(getattr(AutoConfig.from_pretrained(model), "architectures", None) or [])


def processor_kwargs(options: EngineOptions, processor: Any) -> dict[str, Any]:
    """vLLM's `mm_processor_kwargs`: a Qwen2-VL-style processor capped at the pixels the service
    sends, so that vLLM's memory profiling assumes images of that size (it would otherwise
    profile the processor's 12.8 MP maximum). transformers 5 names the range `size`."""
    vision = VisionGeometry.of(processor)
    if not options.max_pixels or vision is None:
        return {}
    low, high = vision.image_pixels
    return {"size": {"shortest_edge": low, "longest_edge": min(high, options.max_pixels)}}


ENGINE_FORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-forker")
"""The thread vLLM's engine core is started from. Linux sends a child its parent-death signal
when the *thread* that forked it ends, and anyio's worker threads end when idle: this one lives
as long as the process."""


@asynccontextmanager
async def open_engine(options: EngineOptions) -> AsyncIterator[VllmEngine]:
    """Load the model in a worker thread, yield the engine, and always shut it down."""
    # vLLM reads its CPU KV-cache size from the environment; a GPU host ignores it.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.cpu_kv_cache_gib))
    architectures = await anyio.to_thread.run_sync(_architectures, options.model)
    audio = model_accepts_audio(architectures, options.audio_input)
    renderer = await anyio.to_thread.run_sync(_load_chat_renderer, options.model)
    kwargs = processor_kwargs(options, renderer)
    # the engine core is forked from the thread that builds it, and dies with that thread
    # (orphans.py): build it on the one that lives as long as the process
    building = asyncio.get_running_loop().run_in_executor(
        ENGINE_FORKER, _build_llm, options, audio, kwargs
    )
    llm = await building
    logger.info("engine ready: %s (%s), audio input %s", options.served_name, architectures, audio)
    try:
        yield VllmEngine(llm, renderer, options, audio)
    finally:
        llm.shutdown()
