"""What a model request and completion are, and the backend protocol.

A backend turns one request into one completion, and closes what it holds when
the run ends. Everything else (retries, accounting, caching, rate limits, the
concurrency cap) wraps backends once, in the gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

# the model-call errors live in prose_sim.errors; they stay importable from here
from prose_sim.errors import (
    FatalModelError,
    ModelCallError,
    ModelCallFailed,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    UnreachableError,
)

__all__ = [
    "ROLES",
    "Backend",
    "Completion",
    "FailsOver",
    "FatalModelError",
    "ModelCallError",
    "ModelCallFailed",
    "ModelRequest",
    "ModelServer",
    "PermanentModelError",
    "RateLimitedError",
    "Remote",
    "RetryableModelError",
    "SamplingParams",
    "UnreachableError",
]

from prose_sim.models.answers import AnswerShape

if TYPE_CHECKING:
    from prose_sim.events import BatchStats
    from prose_sim.models.backends.local import ServerLive, ServerStats

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


class ModelRequest(msgspec.Struct, frozen=True, kw_only=True, dict=True):
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

        Independent of who asked, so identical prompts share cache entries. Computed once
        per request (the gateway's log and the backend both ask), kept in the instance's
        ``__dict__`` as ``functools.cached_property`` would (whose lock costs more here)."""
        known = self.__dict__.get("_content_hash")
        if known is None:
            seen: tuple[object, ...] = (
                self.model,
                self.messages,
                self.params,
                self.response_prefix,
            )
            payload = msgspec.json.encode(seen if self.answer is None else (*seen, self.answer))
            known = self.__dict__["_content_hash"] = hashlib.blake2b(
                payload, digest_size=12
            ).hexdigest()
        return known


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    input_tokens: int
    output_tokens: int
    # set by the gateway: the id of the ModelRequested / ModelResponded events of this call
    request_id: str = ""
    # why generation stopped, as the server said: "stop", "length" (cut at max_new_tokens),
    # ...; "" where unknown (backends that do not say, cached answers)
    finish_reason: str = ""
    # the model the server says answered, where it differs from the one asked ("": the same)
    served_model: str = ""
    # the answer's length in characters before prose_sim cut it (far beyond max_new_tokens);
    # 0: not cut
    cut_from_chars: int = 0


class Backend(Protocol):
    """What serves requests: the scripted double, a local model server, an HTTP client, ...

    Whoever builds a backend closes it with ``aclose`` when the run ends (closing
    twice is harmless); a backend that holds nothing closes as a no-op.
    """

    async def complete(self, request: ModelRequest) -> Completion:
        """Answer one request. Raise on failure; the gateway retries."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (connections, a worker thread)."""
        ...


@runtime_checkable
class Remote(Protocol):
    """A backend on a remote server (the OpenAI-compatible client, the endpoint pool): the
    gateway gives each attempt a default deadline (``default_timeout_s``)."""

    remote: bool


@runtime_checkable
class FailsOver(Protocol):
    """A backend over several endpoints that takes an unreachable one out and sends to the
    others (the endpoint pool): an unreachable error from it does not stop the run."""

    fails_over: bool


@runtime_checkable
class ModelServer(Backend, Protocol):
    """A backend that runs for the whole run (the local model server): the runner enters
    it before the first episode and leaves it after the last, hands it ``on_batch`` to
    report its batches as events, and writes ``stats.summary()`` into the run's summary;
    the progress display reads ``live()`` from its thread."""

    # called (on the event loop) with every reporting window's batch statistics
    on_batch: Callable[[BatchStats], Awaitable[None]] | None
    stats: ServerStats

    def live(self) -> ServerLive:
        """What the server is doing right now (safe to call from another thread)."""
        ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
