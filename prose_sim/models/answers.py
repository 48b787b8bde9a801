"""The shape an answer must have, as typed data on a request.

A caller that will parse a verdict or a list says so on its ``ModelRequest``
(``answer``); a backend whose role is configured ``constrained = true`` then
keeps the model to that shape (the local server by masking logits, an
OpenAI-compatible server through its structured-output request). Unconstrained
roles never see it: the gateway leaves it off, so their requests, hashes and
answers are those of a run without it.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


class Choice(msgspec.Struct, frozen=True, tag_field="shape", tag="choice"):
    """The answer is exactly one of ``keywords`` (a verdict scale's keywords)."""

    keywords: tuple[str, ...]

    @classmethod
    def of(cls, keywords: Iterable[str]) -> Choice:
        return cls(tuple(keywords))


class JsonList(msgspec.Struct, frozen=True, tag_field="shape", tag="json_list"):
    """The answer is a JSON list of strings."""


AnswerShape = Choice | JsonList


def json_schema(shape: AnswerShape) -> dict[str, object]:
    """The JSON schema of ``shape``, for servers that take ``response_format: json_schema``."""
    if isinstance(shape, Choice):
        return {"type": "string", "enum": list(shape.keywords)}
    return {"type": "array", "items": {"type": "string"}}
