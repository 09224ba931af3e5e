"""The public protocol's rules (`gateway/protocol.py`): response headers stay bounded."""

from __future__ import annotations

import json
from urllib.parse import quote

from gateway.protocol import (
    BRIEF_HEADER,
    DESCRIPTION_HEADER,
    OMITTED_HEADER,
    TEXT_HEADER_BYTES,
    bounded_headers,
)


def test_a_long_cjk_description_never_makes_headers_a_client_refuses() -> None:
    """Before: a legal 2,000-character CJK description made 18 KB of headers (Node's HTTP
    client and common proxies refuse over 16 KiB)."""
    description = "静かな雨の夜" * 334  # 2,004 characters, 9 bytes each once URL-encoded
    brief = {"description": description, "genre": "ambient"}
    headers = {
        DESCRIPTION_HEADER: quote(description, safe=""),
        BRIEF_HEADER: quote(json.dumps(brief), safe=""),
        "x-seed": "7",
    }
    bounded = bounded_headers(headers)
    assert sum(len(k) + len(v) for k, v in bounded.items()) < 2 * TEXT_HEADER_BYTES
    assert bounded[OMITTED_HEADER] == f"{DESCRIPTION_HEADER},{BRIEF_HEADER}"
    assert bounded["x-seed"] == "7"


def test_ordinary_headers_pass_whole() -> None:
    headers = {DESCRIPTION_HEADER: "lofi%20piano", BRIEF_HEADER: "%7B%7D"}
    assert bounded_headers(headers) == headers
