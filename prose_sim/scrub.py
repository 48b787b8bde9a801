"""Secret values a run read (API keys), kept out of everything it writes.

``read_key`` remembers each key it hands out; the OpenAI-compatible backend
scrubs answers and errors (a careless server may echo the key back), and the
event log writer scrubs every batch before it reaches the disk, so no event,
result, cache entry or report can hold a key. Values shorter than
``MIN_LENGTH`` are not treated as secrets (servers without keys are given any
non-empty placeholder, e.g. ``x``, which must not be scrubbed out of texts).
"""

from __future__ import annotations

import msgspec

MIN_LENGTH = 8
MASK = "***"
_values: set[str] = set()
_encoded: list[tuple[bytes, bytes]] = []  # (as written in JSON, mask)


def remember(value: str) -> None:
    if len(value) < MIN_LENGTH or value in _values:
        return
    _values.add(value)
    forms = {value.encode(), msgspec.json.encode(value)[1:-1]}
    _encoded.extend((form, MASK.encode()) for form in forms)


def scrub(text: str) -> str:
    for value in _values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def scrub_bytes(data: bytearray) -> bytearray:
    """``data`` with every remembered value masked (in place when there is none)."""
    for form, mask in _encoded:
        if form in data:
            data = bytearray(data.replace(form, mask))
    return data
