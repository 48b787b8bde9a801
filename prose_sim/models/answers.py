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


class Reasoned(msgspec.Struct, frozen=True, tag_field="shape", tag="reasoned"):
    """Free reasoning, then the answer on one line that starts with ``label`` (what a refine
    prompt asks for: reason first, then the preferences on one new line that starts with
    "Preferences:"). The line gets up to ``line_tokens`` of the budget (at most half): once
    only that much is left, the label is written for the model, which then fills the line."""

    label: str = "Preferences:"
    line_tokens: int = 48


AnswerShape = Choice | JsonList | Reasoned


def json_schema(shape: AnswerShape) -> dict[str, object] | None:
    """The JSON schema of ``shape``, for servers that take ``response_format: json_schema``;
    None for a reasoned answer (free text, which no JSON schema describes: such a server
    answers it freely)."""
    match shape:
        case Choice(keywords=keywords):
            return {"type": "string", "enum": list(keywords)}
        case JsonList():
            return {"type": "array", "items": {"type": "string"}}
        case Reasoned():
            return None


# the key of the object that wraps an answer for servers whose structured outputs need an
# object at the schema's root (OpenAI's, vLLM's): {"answer": <the shape's value>}
WRAPPER_KEY = "answer"


def wrapped_schema(shape: AnswerShape) -> dict[str, object] | None:
    """``json_schema(shape)`` inside an object, ``{"answer": ...}``: OpenAI's structured
    outputs take only an object at the root (with every property required and no others);
    None where no schema describes the shape."""
    inner = json_schema(shape)
    if inner is None:
        return None
    return {
        "type": "object",
        "properties": {WRAPPER_KEY: inner},
        "required": [WRAPPER_KEY],
        "additionalProperties": False,
    }


def unwrap(text: str) -> str | None:
    """The answer inside a wrapped JSON answer, as JSON (a verdict ``"yes"``, a list
    ``["a", "b"]``: what the parsers read); None when ``text`` is not such an object."""
    try:
        value = msgspec.json.decode(text.strip())
    except msgspec.DecodeError:
        return None
    if not isinstance(value, dict) or WRAPPER_KEY not in value:
        return None
    return msgspec.json.encode(value[WRAPPER_KEY]).decode()
