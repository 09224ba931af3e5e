"""What the model wrote, made into brief fields: validated JSON, or tidied plain text."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from captioner.prompts import BriefFields, SectionFields
from weavewave_common.protocol import DESCRIPTION_MAX_CHARS

NEUTRAL_DESCRIPTION = "Calm instrumental background music with a steady medium tempo."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffd]+")


def tidy_description(text: str) -> str:
    """One line, at most three sentences and `DESCRIPTION_MAX_CHARS` characters."""
    flat = " ".join(_CONTROL.sub(" ", text).split()).strip(" \"'{}[]")
    sentences = _SENTENCE_END.split(flat)
    return " ".join(sentences[:3])[:DESCRIPTION_MAX_CHARS].strip()


def parse_brief(
    text: str, kind: type[BriefFields] = BriefFields, sections: int = 0
) -> tuple[BriefFields, list[SectionFields]] | None:
    """The model's JSON as `kind` (a song's fields for a song) and, when `sections` were
    asked for, exactly that many sections; None when it is not a valid brief."""
    try:
        answer = json.loads(text, strict=False)
        if not isinstance(answer, dict):
            return None
        written = answer.pop("sections", None) if sections else None
        fields = kind.model_validate(answer)
        parts = [SectionFields.model_validate(s) for s in written or []]
    except (ValueError, ValidationError, TypeError):
        return None
    if len(parts) != sections:
        return None
    description = tidy_description(fields.description)
    if len(description) < 20:
        return None
    tidied = [p.model_copy(update={"description": tidy_description(p.description)}) for p in parts]
    if any(not p.description for p in tidied):
        return None
    return fields.model_copy(update={"description": description}), tidied
