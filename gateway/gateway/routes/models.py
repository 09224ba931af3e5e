"""`GET /models`: the served models, and what an audio upload can be used for."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.audio_use import composer_uses_of, possible_uses
from gateway.protocol import AudioUse
from gateway.routes.deps import GeneratorDep
from weavewave_common.protocol import ComposerCard

router = APIRouter(tags=["music"])


class ServedComposer(BaseModel):
    """One composer a request can name with `model`."""

    name: str = Field(description="What `model` says to use it.")
    model: str | None = Field(description="Its model (null: not answering).")
    sings: bool = Field(description="It sings lyrics.")
    takes_melody: bool = Field(description="It follows an audio clip as a melody.")
    follows_sections: bool = Field(
        False, description="It scores a video in sections that change on its cuts."
    )
    audio_uses: list[AudioUse] = Field(
        description="What it can do with an audio clip (`melody`, `style`, `reference`, "
        "`cover`, `repaint`, `continue`)."
    )
    sample_rate: int | None = Field(description="Hz (null: not answering).")
    channels: int | None = Field(description="1 or 2 (null: not answering).")
    max_duration_s: float | None = Field(description="Its longest clip (null: not answering).")


class ServedModels(BaseModel):
    """The models behind the API now, and what they can do with an audio upload."""

    captioner: str | None = Field(description="The captioner's model (null: not answering).")
    composer: str | None = Field(description="The default composer's model (null: not answering).")
    composers: list[ServedComposer] = Field(
        description="Every composer by name, the default first."
    )
    captioner_hears_audio: bool = Field(description="An audio clip is heard when describing.")
    composer_takes_melody: bool = Field(description="An audio clip can be followed as a melody.")
    composer_sings: bool = Field(description="Songs with vocals and lyrics can be composed.")
    audio_uses: list[AudioUse] = Field(
        description="The `audio_use` values the served models honour besides `auto` and "
        "`ignore` (which always work)."
    )


def served_composer(name: str, card: ComposerCard | None) -> ServedComposer:
    if card is None:
        return ServedComposer(
            name=name,
            model=None,
            sings=False,
            takes_melody=False,
            audio_uses=[],
            sample_rate=None,
            channels=None,
            max_duration_s=None,
        )
    return ServedComposer(
        name=name,
        model=card.name,
        sings=card.sings,
        takes_melody=card.supports_melody,
        follows_sections=card.follows_sections,
        audio_uses=composer_uses_of(card),
        sample_rate=card.sample_rate,
        channels=card.channels,
        max_duration_s=card.max_duration_s,
    )


@router.get(
    "/models",
    name="list_models",
    response_model=ServedModels,
    summary="The served models, and what an audio upload can be used for.",
)
async def list_models(generator: GeneratorDep) -> ServedModels:
    captioner, composer = await generator.served()
    hears = captioner is not None and captioner.hears_audio
    cards = await generator.composers.cards()
    return ServedModels(
        captioner=captioner.name if captioner else None,
        composer=composer.name if composer else None,
        composers=[served_composer(name, card) for name, card in cards.items()],
        captioner_hears_audio=hears,
        composer_takes_melody=composer is not None and composer.supports_melody,
        composer_sings=composer is not None and composer.sings,
        audio_uses=possible_uses(hears, composer_uses_of(composer)),
    )
