"""The model gateway: every model call of a run goes through here.

It routes a request to the backend serving its role through layers shared by
all backends (``prose_sim.models.layers``, composed once per backend in
``Gateway._stack``): the call recorded as events (requested, responded or
failed) on the asking episode's bus, answers replayed from an earlier log, the
response cache, the price, retries with exponential backoff and jitter on
retryable failures (honouring Retry-After), the run's ``[budget]``, each endpoint's requests- and
tokens-per-window limits and adaptive concurrency cap, and a per-attempt
timeout. Backends stay one method.

What retries cannot fix stops the whole run through ``on_stop`` (the runner
cancels every episode, flushes the log and keeps the run resumable): the first
fatal error (a wrong key, no permission, an unknown model), an endpoint that
cannot be reached before it has answered once, and a role whose last
``breaker_calls`` calls all failed after their retries (the circuit breaker).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import anyio
import msgspec

from prose_sim.config.retry import RetryPolicy
from prose_sim.models.answers import AnswerShape
from prose_sim.models.budget import BudgetState
from prose_sim.models.cache import ResponseCache
from prose_sim.models.layers import (
    ERROR_CHARS,
    Attempt,
    Backoff,
    Breaker,
    Budget,
    Cache,
    Call,
    Cost,
    Emit,
    Layer,
    Limits,
    Recorder,
    Replay,
    Retry,
    RunStop,
    StopRun,
)
from prose_sim.models.limits import EndpointLayers
from prose_sim.models.protocol import (
    Backend,
    Completion,
    FailsOver,
    ModelRequest,
    SamplingParams,
)
from prose_sim.models.recorded import RecordedResponses
from prose_sim.seeding import derive_seed

__all__ = [
    "DEFAULT_RETRY",
    "ERROR_CHARS",
    "Emit",
    "Gateway",
    "ModelClient",
    "RetryPolicy",
    "RoleModel",
    "StopRun",
]

DEFAULT_RETRY = RetryPolicy()  # frozen: one shared default


class RoleModel(msgspec.Struct, frozen=True, kw_only=True):
    """What serves one role: the backend's key, the model name, sampling defaults."""

    backend: str
    model: str
    params: SamplingParams = SamplingParams()
    # start answers with the format keyword the prompt asks for (where the backend can)
    use_response_prefix: bool = True
    # keep verdicts and lists to their shape (the request's ``answer``); off: it is left off
    constrained: bool = False
    # USD per million input / output tokens (0: not priced)
    input_price: float = 0.0
    output_price: float = 0.0


class Gateway:
    """Routes requests to backends through the shared layers (``prose_sim.models.layers``).

    ``layers`` and ``cache_ids`` are by backend key; backends without an entry
    skip that layer (the scripted and local backends have neither).
    """

    def __init__(
        self,
        backends: Mapping[str, Backend],
        retry: RetryPolicy = DEFAULT_RETRY,
        *,
        layers: Mapping[str, EndpointLayers] | None = None,
        cache: ResponseCache | None = None,
        cache_ids: Mapping[str, str] | None = None,
        recorded: RecordedResponses | None = None,
        on_stop: StopRun | None = None,
        budget: BudgetState | None = None,
    ):
        """``recorded``: answers from an earlier log, served before anything else (replay, resume).
        ``on_stop``: called once to stop the run (without it, fatal errors only fail their call).
        ``budget``: the run's spend against its ``[budget]`` (it needs ``on_stop``)."""
        self.recorded = recorded
        self.on_stop = on_stop
        self.retry = retry
        self.layers = dict(layers or {})
        self.cache = cache
        self._cache_ids = dict(cache_ids or {})
        # the run's state, shared by every backend's layers
        self._stop = RunStop(on_stop) if on_stop is not None else None
        self._failing: dict[str, int] = {}  # role -> calls failed in a row (after retries)
        self._in_flight: dict[str, anyio.Event] = {}  # cache keys being asked now
        self._backoff = Backoff(retry)
        self.budget = budget if self._stop is not None else None
        self._stacks = {key: self._stack(key, target) for key, target in backends.items()}
        self._request_ids = _request_ids()

    @property
    def stopped(self) -> str:
        """The message the run was stopped with ("" while it goes on)."""
        return self._stop.stopped if self._stop is not None else ""

    def _stack(self, key: str, backend: Backend) -> Layer:
        """The one place the layers are put together: ``backend``'s, outermost last."""
        layer: Layer = Attempt(backend, self.retry)
        limits = self.layers.get(key)
        if limits is not None:
            layer = Limits(layer, limits)
        fails_over = isinstance(backend, FailsOver) and backend.fails_over
        layer = Retry(layer, self.retry, self._backoff, fails_over=fails_over)
        layer = Cost(layer)
        if self.budget is not None:
            assert self._stop is not None
            layer = Budget(layer, self.budget, self._stop)
        identity = self._cache_ids.get(key)
        if self.cache is not None and identity is not None:
            layer = Cache(layer, self.cache, identity, self._in_flight, self._stop)
        if self.recorded is not None:
            layer = Replay(layer, self.recorded)
        layer = Recorder(layer)
        return Breaker(layer, self.retry, self._failing, self._stop)

    async def complete(
        self,
        backend: str,
        request: ModelRequest,
        emit: Emit,
        price: tuple[float, float] = (0.0, 0.0),
    ) -> Completion:
        call = Call(request, next(self._request_ids), emit, price)
        return await self._stacks[backend].complete(call)


def _request_ids() -> Iterator[str]:
    """Request ids: 16 random hex digits each (a uuid4's randomness, without its cost), from
    the system's randomness read 4 KiB at a time (one system call per 512 ids, not one each:
    it was 2% of a run's CPU on the scripted backend)."""
    while True:
        pool = os.urandom(4096).hex()
        for at in range(0, len(pool), 16):
            yield pool[at : at + 16]


class ModelClient:
    """An episode's handle on the gateway: fills in model, sampling and seed.

    Each request's sampling seed derives from the scenario seed and the request
    content (not from the role, the episode or call order): the same prompt gets
    the same answer in every episode of that seed, so e.g. a PLUME user's
    demonstration of a document is identical across the methods being compared.
    """

    def __init__(
        self,
        gateway: Gateway,
        emit: Emit,
        roles: Mapping[str, RoleModel],
        episode_id: str,
        seed: int,
    ):
        self._gateway = gateway
        self._emit = emit
        self._roles = roles
        self._episode_id = episode_id
        self._seed = seed

    async def complete(
        self,
        role: str,
        purpose: str,
        instance: int,
        prompt: str,
        response_prefix: str = "",
        prefixed_max_tokens: int | None = None,
        system: str = "",
        answer: AnswerShape | None = None,
    ) -> Completion:
        """``prefixed_max_tokens`` caps the answer when the prefix is used (a keyword answer);
        ``system``: a system prompt sent before the prompt (none when empty); ``answer``: the
        shape the caller will parse, kept to only where the role is ``constrained``."""
        served = self._roles[role]
        use_prefix = bool(response_prefix) and served.use_response_prefix
        params = served.params
        if use_prefix and prefixed_max_tokens:
            params = msgspec.structs.replace(
                params, max_new_tokens=min(params.max_new_tokens, prefixed_max_tokens)
            )
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        # from the scenario seed and what the model sees, not who asks: the writer and the user
        # asked the same prompt (the oracle's draft, the PLUME user's text) get the same answer
        seed = derive_seed(self._seed, system, prompt) % (2**31)
        request = ModelRequest(
            role=role,
            purpose=purpose,
            episode_id=self._episode_id,
            instance=instance,
            model=served.model,
            messages=messages,
            params=msgspec.structs.replace(params, seed=seed),
            response_prefix=response_prefix if use_prefix else "",
            answer=answer if served.constrained else None,
        )
        return await self._gateway.complete(
            served.backend, request, self._emit, (served.input_price, served.output_price)
        )
