"""What a model request and completion are, and the one-method backend protocol.

A backend turns one request into one completion. Everything else (retries,
accounting, caching, rate limits, the concurrency cap) wraps backends once, in the gateway.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import msgspec

from prose_sim.models.answers import AnswerShape

# user: the simulated user; writer: writes every draft and PROSE candidate (in the paper the
# user's model); agent: the model under test, which only infers; judge: the metrics' judge
ROLES: tuple[str, ...] = ("user", "writer", "agent", "judge")


class SamplingParams(msgspec.Struct, frozen=True, kw_only=True):
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0


class ModelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One chat completion asked for by an actor.

    ``role`` is who asks (user, writer, agent, judge) and ``purpose`` why (draft,
    demonstrate, infer, validate, judge_ppcm, ...): accounting, replay and the
    scripted backend all key on them.
    """

    role: str
    purpose: str
    episode_id: str
    instance: int
    model: str
    messages: list[dict[str, str]]
    params: SamplingParams = SamplingParams()
    # text the answer must start with (e.g. "Preferences: ["), for backends that allow
    # it; a backend that honours it returns the prefix and its continuation together
    response_prefix: str = ""
    # the shape the answer must have, set only for roles configured ``constrained``
    # (``prose_sim.models.answers``); None: free text
    answer: AnswerShape | None = None

    def content_hash(self) -> str:
        """Hash of what the model sees: model, messages, sampling, prefix (and the answer's
        shape when it has one: hashes of unconstrained requests are those they always were).

        Independent of who asked, so identical prompts share cache entries.
        """
        seen: tuple[object, ...] = (self.model, self.messages, self.params, self.response_prefix)
        payload = msgspec.json.encode(seen if self.answer is None else (*seen, self.answer))
        return hashlib.blake2b(payload, digest_size=12).hexdigest()


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    input_tokens: int
    output_tokens: int
    # set by the gateway: the id of the ModelRequested / ModelResponded events of this call
    request_id: str = ""


class Backend(Protocol):
    async def complete(self, request: ModelRequest) -> Completion:
        """Answer one request. Raise on failure; the gateway retries."""
        ...


class ModelCallFailed(Exception):
    """A request failed after every retry. The caller records a failed step."""


class ModelCallError(Exception):
    """A backend failure classified for the gateway's retries.

    ``retryable``: worth another attempt (429, 5xx, timeouts, dropped
    connections); ``throttled``: the provider asked us to slow down (429);
    ``retry_after``: seconds the provider asked us to wait, if it said.
    Other exceptions a backend raises are retried as well.
    """

    retryable = True
    throttled = False
    # retrying, or going on with other calls, cannot help (401, 403, 404): stop the run
    fatal = False
    # the endpoint could not be reached at all (refused, no such host): fatal before
    # the endpoint has answered once, retried after (a blip)
    unreachable = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RetryableModelError(ModelCallError):
    """5xx, a timeout or a dropped connection."""


class RateLimitedError(ModelCallError):
    """The provider answered 429."""

    throttled = True


class PermanentModelError(ModelCallError):
    """Retrying cannot help (400, 401, 403, 404, ...)."""

    retryable = False


class FatalModelError(PermanentModelError):
    """No call to this endpoint can succeed: a wrong key (401), no permission (403), an
    unknown model or path (404). The gateway stops the run at the first one."""

    fatal = True


class UnreachableError(RetryableModelError):
    """The connection could not be made (refused, unknown host)."""

    unreachable = True
