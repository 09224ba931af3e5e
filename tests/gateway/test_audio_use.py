"""One rule for what an audio upload is for (`audio_use`), over every mix of what the served
models can do."""

from __future__ import annotations

import pytest

from gateway.audio_use import AudioPlan, audio_use_header, plan_audio, possible_uses
from gateway.protocol import AudioUse
from weavewave_common.errors import InvalidInput

AUTO, HEARD, MELODY, IGNORE = AudioUse.AUTO, AudioUse.HEARD, AudioUse.MELODY, AudioUse.IGNORE


@pytest.mark.parametrize(
    ("choice", "can_hear", "takes_melody", "plan"),
    [
        (AUTO, True, True, AudioPlan(hear=True, melody=True)),
        (AUTO, False, True, AudioPlan(hear=False, melody=True)),
        (AUTO, True, False, AudioPlan(hear=True, melody=False)),
        (IGNORE, True, True, AudioPlan(hear=False, melody=False)),
        (HEARD, True, True, AudioPlan(hear=True, melody=False)),
        (MELODY, True, True, AudioPlan(hear=False, melody=True)),
    ],
)
def test_a_choice_the_models_can_honour_is_planned(
    choice: AudioUse, can_hear: bool, takes_melody: bool, plan: AudioPlan
) -> None:
    assert plan_audio(choice, True, can_hear, takes_melody) == plan


@pytest.mark.parametrize(
    ("choice", "can_hear", "takes_melody", "named"),
    [
        (HEARD, False, True, "they can: melody"),
        (MELODY, True, False, "they can: heard"),
        (MELODY, False, False, "none (use audio_use=ignore)"),
    ],
)
def test_a_choice_they_cannot_honour_is_a_422_naming_what_they_can(
    choice: AudioUse, can_hear: bool, takes_melody: bool, named: str
) -> None:
    with pytest.raises(InvalidInput, match=named.replace("(", r"\(").replace(")", r"\)")) as err:
        plan_audio(choice, True, can_hear, takes_melody)
    assert err.value.code == "audio_use_unsupported" and err.value.status == 422


def test_without_audio_only_auto_and_ignore_make_sense() -> None:
    for choice in (AUTO, IGNORE):
        assert plan_audio(choice, False, True, True) == AudioPlan(hear=False, melody=False)
    for choice in (HEARD, MELODY):
        with pytest.raises(InvalidInput) as err:
            plan_audio(choice, False, True, True)
        assert err.value.code == "audio_use_without_audio"


def test_the_header_says_what_was_done() -> None:
    assert audio_use_header(True, heard=True, melody=True) == "heard,melody"
    assert audio_use_header(True, heard=False, melody=False) == "unused"
    assert audio_use_header(False, heard=False, melody=False) == "none"
    assert possible_uses(True, True) == [HEARD, MELODY] and possible_uses(False, False) == []
