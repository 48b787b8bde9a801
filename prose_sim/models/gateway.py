"""The model gateway: every model call of a run goes through here.

It routes a request to the backend serving its role through layers shared by
all backends (wrapping each backend once): the response cache, each
endpoint's requests- and tokens-per-window limits (aiolimiter) and adaptive
concurrency cap, retries with exponential backoff and jitter on retryable
failures (honouring Retry-After), a per-attempt timeout; and it records each
call as events (requested, responded or failed) on the asking episode's bus.
Backends stay one method.

What retries cannot fix stops the whole run through ``on_stop`` (the runner
cancels every episode, flushes the log and keeps the run resumable): the first
fatal error (a wrong key, no permission, an unknown model), an endpoint that
cannot be reached before it has answered once, and a role whose last
``breaker_calls`` calls all failed after their retries (the circuit breaker).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn

import anyio
import anyio.lowlevel
import msgspec
import structlog

from prose_sim.config.retry import RetryPolicy
from prose_sim.errors import ModelCallError, ModelCallFailed, RunStopping, describe_error
from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.answers import AnswerShape
from prose_sim.models.cache import ResponseCache, cache_key
from prose_sim.models.limits import EndpointLayers
from prose_sim.models.protocol import Backend, Completion, ModelRequest, SamplingParams
from prose_sim.models.recorded import RecordedResponses
from prose_sim.models.tokens import estimate_request_tokens
from prose_sim.seeding import derive_seed

# publishes an event built with its own fields (the episode bus stamps the envelope)
Emit = Callable[[Event], Awaitable[object]]
# on_stop(kind, message): kind "fatal" (exit 2) or "breaker" (exit 1)
StopRun = Callable[[str, str], None]


DEFAULT_RETRY = RetryPolicy()  # frozen: one shared default
# an error recorded for a failed call: ours carry the server's reason and what to change
ERROR_CHARS = 1000

log = structlog.get_logger("prose_sim")


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


async def _responded(
    emit: Emit,
    request_id: str,
    request: ModelRequest,
    completion: Completion,
    latency_s: float,
    attempts: int,
    cached: bool = False,
    cost_usd: float = 0.0,
) -> None:
    await emit(
        ModelResponded(
            request_id=request_id,
            instance=request.instance,
            role=request.role,
            purpose=request.purpose,
            text=completion.text,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            latency_s=latency_s,
            cached=cached,
            attempts=attempts,
            cost_usd=cost_usd,
            finish_reason=completion.finish_reason,
            served_model=completion.served_model,
            cut_from_chars=completion.cut_from_chars,
        )
    )


async def _failed(
    emit: Emit, request_id: str, request: ModelRequest, error: str, attempts: int
) -> NoReturn:
    """Record a call that failed every attempt, then raise for the caller's step."""
    await emit(
        ModelFailed(
            request_id=request_id,
            instance=request.instance,
            role=request.role,
            purpose=request.purpose,
            error=error,
            attempts=attempts,
        )
    )
    raise ModelCallFailed(f"{request.role}/{request.purpose}: {error}")


async def _served_from_log(
    hit: ModelResponded | ModelFailed, request: ModelRequest, request_id: str, emit: Emit
) -> Completion:
    """A recorded outcome, recorded again with its original accounting under this call's id."""
    match hit:
        case ModelFailed(error=error, attempts=attempts):
            await _failed(emit, request_id, request, error, attempts)
        case ModelResponded():
            await emit(
                msgspec.structs.replace(
                    hit,
                    request_id=request_id,
                    instance=request.instance,
                    role=request.role,
                    purpose=request.purpose,
                )
            )
            return Completion(
                text=hit.text,
                input_tokens=hit.input_tokens,
                output_tokens=hit.output_tokens,
                request_id=request_id,
                finish_reason=hit.finish_reason,
                served_model=hit.served_model,
                cut_from_chars=hit.cut_from_chars,
            )


class Gateway:
    """Routes requests to backends through the shared layers: the response cache,
    each endpoint's rate limits and adaptive concurrency cap, retries with
    backoff (honouring Retry-After) and a per-attempt timeout, and accounting.

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
    ):
        """``recorded``: answers from an earlier log, served before anything else (replay, resume).
        ``on_stop``: called once to stop the run (without it, fatal errors only fail their call)."""
        self.recorded = recorded
        self.on_stop = on_stop
        self.stopped = ""  # the message the run was stopped with
        self._answered: set[str] = set()  # backends that answered at least once
        self._failing: dict[str, int] = {}  # role -> calls failed in a row (after retries)
        self._backends = dict(backends)
        self.retry = retry
        self.layers = dict(layers or {})
        self.cache = cache
        self._cache_ids = dict(cache_ids or {})
        self._in_flight: dict[str, anyio.Event] = {}  # cache keys being asked now
        self._jitter = random.Random(0)  # backoff jitter only; never affects results
        self._capped_wait = False  # a Retry-After beyond the cap was said once

    async def complete(
        self,
        backend: str,
        request: ModelRequest,
        emit: Emit,
        price: tuple[float, float] = (0.0, 0.0),
    ) -> Completion:
        request_id = os.urandom(8).hex()  # 16 random hex digits (a uuid4's cost without it)
        request_hash = request.content_hash()
        await emit(
            ModelRequested(
                request_id=request_id,
                instance=request.instance,
                role=request.role,
                purpose=request.purpose,
                model=request.model,
                request_hash=request_hash,
                messages=request.messages,
            )
        )
        if self.recorded is not None:
            logged = self.recorded.take(request, request_hash)
            if logged is not None:
                return await _served_from_log(logged, request, request_id, emit)
        key = None
        identity = self._cache_ids.get(backend)
        if self.cache is not None and identity is not None:
            key = cache_key(identity, request)
            while True:
                stored = self.cache.get(key)
                if stored is not None:
                    await _responded(
                        emit, request_id, request, stored, 0.0, attempts=0, cached=True
                    )
                    return msgspec.structs.replace(stored, request_id=request_id)
                pending = self._in_flight.get(key)
                if pending is None:
                    break
                await pending.wait()  # an identical request is being asked: wait for its answer
            self._in_flight[key] = anyio.Event()
        try:
            return await self._call(backend, request, request_id, emit, price, key)
        finally:
            if key is not None:
                self._in_flight.pop(key).set()

    async def _call(
        self,
        backend: str,
        request: ModelRequest,
        request_id: str,
        emit: Emit,
        price: tuple[float, float],
        key: str | None,
    ) -> Completion:
        target = self._backends[backend]
        layers = self.layers.get(backend)
        estimate = estimate_request_tokens(request) if layers is not None else 0
        error = ""
        attempt = 0
        fatal = False
        while attempt < self.retry.attempts:
            attempt += 1
            retry_after = None
            generation, charged = (await layers.enter(estimate)) if layers is not None else (0, 0.0)
            outcome, actual = "failed", None
            started = time.perf_counter()
            deadline = self._deadline(target, request)
            try:
                if deadline is None:
                    completion = await target.complete(request)
                else:  # the whole attempt: bytes trickling in do not extend it
                    with anyio.fail_after(deadline):
                        completion = await target.complete(request)
                outcome = "ok"
                actual = completion.input_tokens + completion.output_tokens
            except Exception as exc:  # any backend failure is classified, retried, then recorded
                # our own errors carry the server's reason and what to change: kept whole
                error = describe_error(exc, limit=ERROR_CHARS)
                if isinstance(exc, TimeoutError) and deadline is not None:
                    error = f"TimeoutError: no answer within the attempt's {deadline:g} s " + (
                        "([retry] timeout_s)"
                        if self.retry.timeout_s is not None
                        else f"(the default for max_new_tokens = {request.params.max_new_tokens};"
                        " [retry] timeout_s sets it)"
                    )
                if isinstance(exc, ModelCallError):
                    if exc.throttled:
                        outcome = "throttled"
                    retry_after = exc.retry_after
                    fatal = exc.fatal or (
                        exc.unreachable and not self._starts_unchecked(backend, target)
                    )
                    if fatal or not exc.retryable:
                        break
            finally:
                if layers is not None:
                    layers.exit(generation, charged, outcome, actual)
            if outcome != "ok":
                if attempt < self.retry.attempts:
                    delay = self.retry.delay(attempt, self._jitter)
                    if retry_after is not None:
                        delay = max(delay, self._capped(retry_after, request))
                    await anyio.sleep(delay)
                continue
            self._answered.add(backend)
            self._failing[request.role] = 0
            if key is not None and self.cache is not None:
                self._store(key, completion)
            cost = (completion.input_tokens * price[0] + completion.output_tokens * price[1]) / 1e6
            latency = time.perf_counter() - started
            await _responded(
                emit, request_id, request, completion, latency, attempts=attempt, cost_usd=cost
            )
            return msgspec.structs.replace(completion, request_id=request_id)
        stop = (
            self._stop_reason(request, error, attempt, fatal) if self.on_stop is not None else None
        )
        try:
            await _failed(emit, request_id, request, error, attempt)
        except ModelCallFailed:
            if stop is None:
                raise
        self._stop(*stop)
        await anyio.lowlevel.checkpoint()  # the run's scope is cancelled: this raises
        raise RunStopping(self.stopped)

    def _deadline(self, target: Backend, request: ModelRequest) -> float | None:
        """The attempt's deadline: ``[retry] timeout_s``, else for a remote server the default
        from the request's ``max_new_tokens`` (``default_timeout_s``); None: no deadline."""
        if self.retry.timeout_s is not None:
            return self.retry.timeout_s
        if getattr(target, "remote", False):
            from prose_sim.models.backends.openai_compat import default_timeout_s

            return default_timeout_s(request.params.max_new_tokens)
        return None

    def _capped(self, retry_after: float, request: ModelRequest) -> float:
        """A server's Retry-After, at most ``[retry] max_retry_after_s`` (said once when cut)."""
        cap = self.retry.max_retry_after_s
        if retry_after <= cap:
            return retry_after
        if not self._capped_wait:
            self._capped_wait = True
            log.warning(
                "retry_after_capped",
                role=request.role,
                asked_s=retry_after,
                waiting_s=cap,
                detail="the server asked for a longer wait than [retry] max_retry_after_s",
            )
        return cap

    def _starts_unchecked(self, backend: str, target: Backend) -> bool:
        """True when an unreachable endpoint is not (or no longer) a reason to stop:
        it answered before (a blip), or a pool fails over to its other endpoints."""
        return backend in self._answered or bool(getattr(target, "fails_over", False))

    def _stop_reason(
        self, request: ModelRequest, error: str, attempts: int, fatal: bool
    ) -> tuple[str, str] | None:
        """(kind, message) when this failed call stops the run: a fatal error, or the
        circuit breaker tripping; None when the run goes on."""
        where = f"models.{request.role} ({request.model})"
        if fatal:
            return "fatal", f"{where}: {error}"
        failing = self._failing.get(request.role, 0) + 1
        self._failing[request.role] = failing
        n = self.retry.breaker_calls
        if not n or failing < n:
            return None
        return (
            "breaker",
            f"{where}: its last {n} calls all failed after {attempts} attempt(s) each "
            f"(last: {error}); the circuit breaker ([retry] breaker_calls) stopped the run",
        )

    def _stop(self, kind: str, message: str) -> None:
        if not self.stopped:
            self.stopped = message
            assert self.on_stop is not None
            self.on_stop(kind, message)

    def _store(self, key: str, completion: Completion) -> None:
        """Put an answer in the response cache; a cache that cannot be written stops the run."""
        try:
            self.cache.put(key, completion)  # type: ignore[union-attr]
        except Exception as exc:  # sqlite3.OperationalError: database or disk is full, ...
            path = getattr(self.cache, "path", "the response cache")
            if self.on_stop is None:
                raise
            self._stop("io_error", f"{path}: cannot write the response cache: {exc}")


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
