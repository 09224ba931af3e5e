"""What an audio upload is for: one rule for `/generate`, `/compose` and jobs.

The client says it with `audio_use`, or leaves `auto`: every use the served models support — the
captioner hears it when its model hears, and the composer uses it the first way its model
offers, in this order: as a melody (MusicGen-melody), as a style (MusicGen-Style: an excerpt
from the clip's middle), as a timbre reference (ACE-Step). A cover, a repaint or a continuation
remakes or extends the clip itself, so it is done only when asked for. A use the served models
cannot honour is a 422 naming what they can, never a clip quietly dropped;
`X-WeaveWave-Audio-Use` says what was done.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocol import AudioUse
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import ComposerCard

COMPOSER_USES = (
    AudioUse.MELODY,
    AudioUse.STYLE,
    AudioUse.REFERENCE,
    AudioUse.COVER,
    AudioUse.REPAINT,
    AudioUse.CONTINUE,
)
AUTO_COMPOSER_USES = (AudioUse.MELODY, AudioUse.STYLE, AudioUse.REFERENCE)
"""What `auto` lets the composer do with a clip, the first its model offers."""


@dataclass(frozen=True)
class AudioPlan:
    hear: bool
    """Ask the captioner to hear the clip (it still reports it unheard if its model cannot)."""
    composer_use: AudioUse | None = None
    """What the composer does with the clip (None: it does not get it)."""

    @property
    def melody(self) -> bool:
        return self.composer_use is AudioUse.MELODY


NOTHING = AudioPlan(hear=False)


def plan_audio(
    choice: AudioUse, has_audio: bool, can_hear: bool, composer_uses: list[AudioUse]
) -> AudioPlan:
    """The plan for this request, or 422 when the choice cannot be honoured. `composer_uses`:
    what the composer's model can do with a clip."""
    if not has_audio:
        if choice not in (AudioUse.AUTO, AudioUse.IGNORE):
            raise InvalidInput(
                f"audio_use={choice.value}: there is no audio upload.",
                code="audio_use_without_audio",
            )
        return NOTHING
    if choice is AudioUse.AUTO:
        auto = next((use for use in AUTO_COMPOSER_USES if use in composer_uses), None)
        return AudioPlan(hear=can_hear, composer_use=auto)
    if choice is AudioUse.IGNORE:
        return NOTHING
    possible = possible_uses(can_hear, composer_uses)
    if choice not in possible:
        can = ", ".join(u.value for u in possible) or "none (use audio_use=ignore)"
        raise InvalidInput(
            f"audio_use={choice.value}: the served models cannot use audio that way; they can: "
            f"{can}.",
            code="audio_use_unsupported",
        )
    if choice is AudioUse.HEARD:
        return AudioPlan(hear=True)
    return AudioPlan(hear=False, composer_use=choice)


def possible_uses(can_hear: bool, composer_uses: list[AudioUse]) -> list[AudioUse]:
    """The uses besides `auto` and `ignore` that the served models support."""
    heard = [AudioUse.HEARD] if can_hear else []
    return heard + [use for use in COMPOSER_USES if use in composer_uses]


def composer_uses_of(card: ComposerCard | None) -> list[AudioUse]:
    """What a composer's model card says it can do with a clip."""
    if card is None:
        return []
    offered = set(card.audio_uses)
    if card.supports_melody:
        offered.add(AudioUse.MELODY.value)
    return [use for use in COMPOSER_USES if use.value in offered]


def audio_use_header(has_audio: bool, heard: bool, composer_use: AudioUse | None) -> str:
    """`X-WeaveWave-Audio-Use`: what was done (`heard`, `melody`, `reference`, … or `heard,…`),
    `unused`, `none`."""
    if not has_audio:
        return "none"
    done = (["heard"] if heard else []) + ([composer_use.value] if composer_use else [])
    return ",".join(done) or "unused"
