"""The brief writer's fallbacks, pinned: structured, retried, plain text, stand-in.

The tiny VLM writes no valid JSON, so the service tests only ever see the last links of the
chain; a scripted engine (the model's answers, in order) drives the real `Describer` through
each link.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from captioner.describe import DescribeInput, DescribeLimits, Describer
from captioner.engine import EngineOutput, EngineRequest
from captioner.media import MediaLimits
from tests.captioner.test_brief_parsing import VALID
from weavewave_common.protocol import BriefSource, MusicBrief


class ScriptedEngine:
    """Answers each generation with the next scripted text; records what it was asked."""

    model_name = "scripted"
    accepts_audio = False
    failure = None

    def __init__(self, *answers: str) -> None:
        self._answers = list(answers)
        self.requests: list[EngineRequest] = []

    async def generate(self, request: EngineRequest) -> EngineOutput:
        self.requests.append(request)
        return EngineOutput(
            self._answers.pop(0), prompt_tokens=10, completion_tokens=5, finish_reason="stop"
        )


def brief_from(engine: ScriptedEngine, prompt: str = "calm piano at dusk") -> MusicBrief:
    describer = Describer(engine, MediaLimits(), DescribeLimits())
    return asyncio.run(describer.describe(DescribeInput(prompt=prompt), "req-1"))


VALID_JSON = json.dumps(VALID)
PLAIN = "Gentle solo piano in a slow tempo, warm and reflective, with soft room reverb."


def test_a_valid_first_answer_is_structured() -> None:
    engine = ScriptedEngine(VALID_JSON)
    brief = brief_from(engine)
    assert (brief.source, brief.usage.attempts) == (BriefSource.STRUCTURED, 1)
    assert brief.genre == "lofi hip hop" and brief.tempo_bpm == 80
    assert brief.usage.prompt_tokens == 10 and brief.usage.completion_tokens == 5


def test_invalid_then_valid_json_is_retried() -> None:
    engine = ScriptedEngine('{"description": "too short"}', VALID_JSON)
    brief = brief_from(engine)
    assert (brief.source, brief.usage.attempts) == (BriefSource.RETRIED, 2)
    assert brief.warnings == ["attempt 1: the model's JSON was not a valid brief"]
    assert brief.usage.prompt_tokens == 20
    assert [r.json_schema is not None for r in engine.requests] == [True, True]
    assert engine.requests[1].temperature >= engine.requests[0].temperature
    assert len({r.request_id for r in engine.requests}) == 2  # each attempt its own id


def test_twice_invalid_falls_back_to_plain_text() -> None:
    engine = ScriptedEngine("{", "not json", PLAIN)
    brief = brief_from(engine)
    assert (brief.source, brief.usage.attempts) == (BriefSource.PLAIN_TEXT, 3)
    assert brief.description == PLAIN
    assert engine.requests[2].json_schema is None  # the last attempt asks for prose
    assert brief.genre is None


@pytest.mark.parametrize("last", ["", "  ", "ok"])
def test_no_usable_text_gets_a_stand_in_from_the_users_words(last: str) -> None:
    brief = brief_from(ScriptedEngine("{", "{", last), prompt="calm piano at dusk")
    assert (brief.source, brief.usage.attempts) == (BriefSource.PLAIN_TEXT, 3)
    assert brief.description == "calm piano at dusk"
    assert "the model wrote no usable text; the description is a stand-in" in brief.warnings
