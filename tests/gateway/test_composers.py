"""The named composers: `GATEWAY_COMPOSERS` parsed, a request's `model` picked or refused."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.composers import Composers, parse_composers
from weavewave_common.errors import InvalidInput


def test_names_and_urls_keep_their_order() -> None:
    entries = ["musicgen=http://a:8002", " ace-step = http://b:8002 "]
    assert parse_composers(entries) == {"musicgen": "http://a:8002", "ace-step": "http://b:8002"}
    assert list(parse_composers(entries)) == ["musicgen", "ace-step"]


@pytest.mark.parametrize("entry", ["http://a:8002", "=http://a", "musicgen="])
def test_an_entry_without_a_name_or_a_url_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="is not name=url"):
        parse_composers([entry])


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named twice"):
        parse_composers(["a=http://x", "a=http://y"])


def test_the_first_is_the_default_and_an_unknown_name_lists_the_others() -> None:
    first, second = object(), object()
    composers = Composers({"musicgen": first, "ace-step": second})  # type: ignore[dict-item]
    picked: list[Any] = [composers.pick(None), composers.pick(""), composers.pick("ace-step")]
    assert picked == [first, first, second]
    with pytest.raises(InvalidInput) as refused:
        composers.pick("nope")
    assert refused.value.code == "unknown_model"
    assert "musicgen, ace-step" in str(refused.value)
