"""One rule for what an audio upload is for (`audio_use`), over every mix of what the served
models can do: the captioner hearing it, the composer following it as a melody or reusing it
(a timbre reference, a cover, a repaint)."""

from __future__ import annotations

import pytest

from gateway.audio_use import (
    AudioPlan,
    audio_use_header,
    composer_uses_of,
    plan_audio,
    possible_uses,
)
from gateway.protocol import AudioUse
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import ComposerCard

AUTO, HEARD, MELODY, IGNORE = AudioUse.AUTO, AudioUse.HEARD, AudioUse.MELODY, AudioUse.IGNORE
REFERENCE, COVER, REPAINT = AudioUse.REFERENCE, AudioUse.COVER, AudioUse.REPAINT
CONTINUE, STYLE = AudioUse.CONTINUE, AudioUse.STYLE
ACE_STEP = [REFERENCE, COVER, REPAINT]
STABLE_AUDIO_3 = [COVER, REPAINT, CONTINUE]


@pytest.mark.parametrize(
    ("choice", "can_hear", "composer", "plan"),
    [
        (AUTO, True, [MELODY], AudioPlan(hear=True, composer_use=MELODY)),
        (AUTO, False, [MELODY], AudioPlan(hear=False, composer_use=MELODY)),
        (AUTO, True, [], AudioPlan(hear=True)),
        (AUTO, False, ACE_STEP, AudioPlan(hear=False, composer_use=REFERENCE)),  # never a cover
        (IGNORE, True, [MELODY], AudioPlan(hear=False)),
        (HEARD, True, [MELODY], AudioPlan(hear=True)),
        (MELODY, True, [MELODY], AudioPlan(hear=False, composer_use=MELODY)),
        (COVER, True, ACE_STEP, AudioPlan(hear=False, composer_use=COVER)),
        (REPAINT, False, ACE_STEP, AudioPlan(hear=False, composer_use=REPAINT)),
        (CONTINUE, True, STABLE_AUDIO_3, AudioPlan(hear=False, composer_use=CONTINUE)),
        (AUTO, False, STABLE_AUDIO_3, AudioPlan(hear=False)),  # it only remakes or extends
        (AUTO, True, [STYLE], AudioPlan(hear=True, composer_use=STYLE)),  # MusicGen-Style
    ],
)
def test_a_choice_the_models_can_honour_is_planned(
    choice: AudioUse, can_hear: bool, composer: list[AudioUse], plan: AudioPlan
) -> None:
    assert plan_audio(choice, True, can_hear, composer) == plan


@pytest.mark.parametrize(
    ("choice", "can_hear", "composer", "named"),
    [
        (HEARD, False, [MELODY], "they can: melody"),
        (MELODY, True, [], "they can: heard"),
        (MELODY, False, [], "none (use audio_use=ignore)"),
        (MELODY, True, ACE_STEP, "they can: heard, reference, cover, repaint"),
        (COVER, False, [MELODY], "they can: melody"),
        (CONTINUE, True, ACE_STEP, "they can: heard, reference, cover, repaint"),
        (STYLE, False, [MELODY], "they can: melody"),
    ],
)
def test_a_choice_they_cannot_honour_is_a_422_naming_what_they_can(
    choice: AudioUse, can_hear: bool, composer: list[AudioUse], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named.replace("(", r"\(").replace(")", r"\)")) as err:
        plan_audio(choice, True, can_hear, composer)
    assert err.value.code == "audio_use_unsupported" and err.value.status == 422


def test_without_audio_only_auto_and_ignore_make_sense() -> None:
    for choice in (AUTO, IGNORE):
        assert plan_audio(choice, False, True, [MELODY]) == AudioPlan(hear=False)
    for choice in (HEARD, MELODY, REFERENCE, COVER, REPAINT):
        with pytest.raises(InvalidInput) as err:
            plan_audio(choice, False, True, ACE_STEP + [MELODY])
        assert err.value.code == "audio_use_without_audio"


def test_the_header_says_what_was_done() -> None:
    assert audio_use_header(True, heard=True, composer_use=MELODY) == "heard,melody"
    assert audio_use_header(True, heard=False, composer_use=COVER) == "cover"
    assert audio_use_header(True, heard=False, composer_use=None) == "unused"
    assert audio_use_header(False, heard=False, composer_use=None) == "none"
    assert possible_uses(True, [MELODY]) == [HEARD, MELODY] and possible_uses(False, []) == []


def card(supports_melody: bool, audio_uses: list[str]) -> ComposerCard:
    return ComposerCard(
        name="m",
        backend="b",
        sample_rate=32000,
        channels=1,
        supports_melody=supports_melody,
        audio_uses=audio_uses,
        max_duration_s=30,
        loaded=True,
    )


def test_a_composers_card_says_what_it_can_do_with_a_clip() -> None:
    assert composer_uses_of(card(True, [])) == [MELODY]
    ace = card(False, ["reference", "cover", "repaint"])
    assert composer_uses_of(ace) == ACE_STEP
    assert composer_uses_of(None) == [] and composer_uses_of(card(False, [])) == []
