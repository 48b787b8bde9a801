"""The one token estimate: what a text or a request costs before a tokenizer has seen it.

One token per 4 characters, rounded up. The rate limits charge a request's
estimate before the call (and correct it with the reported usage after); an
OpenAI-compatible server that reports no usage is charged the estimate; the
loopback chat server of the tests counts tokens the same way.
"""

from __future__ import annotations

import math

from prose_sim.models.protocol import ModelRequest


def estimate_tokens(text: str) -> int:
    """A rough token count: one token per 4 characters (rounded up)."""
    return math.ceil(len(text) / 4)


def estimate_request_tokens(request: ModelRequest) -> int:
    """Tokens a request may use, before the call: its messages' estimate + the longest answer."""
    prompt = sum(estimate_tokens(m.get("content", "")) for m in request.messages)
    return prompt + request.params.max_new_tokens
