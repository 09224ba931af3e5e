"""What an audio upload is for: one rule for `/generate`, `/compose` and jobs.

The client says it with `audio_use`, or leaves `auto`: every use the served models support (the
captioner hears it when its model hears; the composer follows it as a melody when its model
takes one). A use the served models cannot honour is a 422 naming what they can, never a clip
quietly dropped; `X-WeaveWave-Audio-Use` says what was done.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocol import AudioUse
from weavewave_common.errors import InvalidInput


@dataclass(frozen=True)
class AudioPlan:
    hear: bool
    """Ask the captioner to hear the clip (it still reports it unheard if its model cannot)."""
    melody: bool
    """Send the clip to the composer as a melody."""


NOTHING = AudioPlan(hear=False, melody=False)


def plan_audio(choice: AudioUse, has_audio: bool, can_hear: bool, takes_melody: bool) -> AudioPlan:
    """The plan for this request, or 422 when the choice cannot be honoured."""
    if not has_audio:
        if choice in (AudioUse.HEARD, AudioUse.MELODY):
            raise InvalidInput(
                f"audio_use={choice.value}: there is no audio upload.",
                code="audio_use_without_audio",
            )
        return NOTHING
    if choice is AudioUse.AUTO:
        return AudioPlan(hear=can_hear, melody=takes_melody)
    if choice is AudioUse.IGNORE:
        return NOTHING
    possible = possible_uses(can_hear, takes_melody)
    if choice not in possible:
        can = ", ".join(u.value for u in possible) or "none (use audio_use=ignore)"
        raise InvalidInput(
            f"audio_use={choice.value}: the served models cannot use audio that way; they can: "
            f"{can}.",
            code="audio_use_unsupported",
        )
    return AudioPlan(hear=choice is AudioUse.HEARD, melody=choice is AudioUse.MELODY)


def possible_uses(can_hear: bool, takes_melody: bool) -> list[AudioUse]:
    """The uses besides `auto` and `ignore` that the served models support."""
    return [use for use, ok in ((AudioUse.HEARD, can_hear), (AudioUse.MELODY, takes_melody)) if ok]


def audio_use_header(has_audio: bool, heard: bool, melody: bool) -> str:
    """`X-WeaveWave-Audio-Use`: what was done (`heard`, `melody`, both), `unused`, `none`."""
    done = [name for name, ok in (("heard", heard), ("melody", melody)) if ok]
    if not has_audio:
        return "none"
    return ",".join(done) or "unused"
