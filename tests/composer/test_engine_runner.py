"""The engine's model thread and asyncio side, in process on the tiny MusicGen: tickets in,
chunks out, a full queue refused, a cancelled ticket's slot taken by the next one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from composer.engine.loader import TransformersBackend
from composer.engine.runner import EngineScheduler
from composer.generation import BackendOptions, GenerationParams, GenerationRequest
from composer.scheduler import Ticket
from weavewave_common.errors import ServiceUnavailable


def steps() -> float:
    return REGISTRY.get_sample_value("composer_generation_steps_total") or 0.0


def request(text: str, seconds: float, seed: int) -> GenerationRequest:
    return GenerationRequest(text, GenerationParams(duration_s=seconds, seed=seed))


async def first_chunk(ticket: Ticket) -> None:
    async for _ in ticket.chunks():
        return


async def drain(ticket: Ticket) -> int:
    return sum([chunk.shape[1] async for chunk in ticket.chunks()])


def test_queue_full_then_a_cancelled_slot_goes_to_the_next(tiny_musicgen: Path) -> None:
    backend = TransformersBackend.load(BackendOptions("transformers", str(tiny_musicgen)))

    async def scenario() -> None:
        engine = EngineScheduler(backend.engine(1), max_queue=1, condition=backend.condition)
        await engine.start()
        try:
            running = engine.submit(request("endless drone", 60.0, 1))
            await asyncio.wait_for(first_chunk(running), 30)  # it holds the only slot
            waiting = engine.submit(request("sad cello", 1.0, 2))
            with pytest.raises(ServiceUnavailable) as refused:
                engine.submit(request("one too many", 1.0, 3))
            assert refused.value.code == "queue_full" and refused.value.retry_after_s
            steps_before = steps()
            running.cancel()
            samples = await asyncio.wait_for(drain(waiting), 30)
            assert samples == backend.samples_for(1.0)
            # 1 s is 53 steps; the drone's remaining ~3,000 were never run (one slot).
            assert steps() - steps_before < 60
        finally:
            await engine.stop()

    asyncio.run(scenario())
