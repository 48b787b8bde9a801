"""The gateway's layers: each wraps the next one and has one job.

A model call passes down through them, outermost first::

    Breaker -> Recorder -> Replay -> Cache -> Budget -> Cost -> Retry -> Limits -> Attempt -> backend

``Gateway._stack`` composes them, once per backend, leaving out those a backend has no
use for (Replay without a recorded log, Cache without a response cache or a cache
identity, Budget without a ``[budget]``, Limits without an endpoint's limits). Every layer has the one method
``complete(call)``, as a backend has ``complete(request)``; the ``Call`` carries the
request down and what the layers learn on the way (attempts, latency, cost, where the
answer came from) up to the Recorder. State that is the run's rather than the
backend's (the failing count of a role, the backoff's generator, the calls in flight
by cache key, whether the run was stopped) is made once by the gateway and given to
every backend's layer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import anyio.lowlevel
import msgspec
import structlog

from prose_sim.config.retry import RetryPolicy
from prose_sim.errors import ModelCallError, ModelCallFailed, RunStopping, describe_error
from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.budget import BudgetState, Spend
from prose_sim.models.cache import ResponseCache, cache_key
from prose_sim.models.limits import EndpointLayers
from prose_sim.models.protocol import Backend, Completion, ModelRequest, Remote
from prose_sim.models.recorded import RecordedResponses
from prose_sim.models.tokens import estimate_request_tokens

# publishes an event built with its own fields (the episode bus stamps the envelope)
Emit = Callable[[Event], Awaitable[object]]
# on_stop(kind, message): kind "fatal" (exit 2), "breaker" (exit 1), "budget" (exit 3) or "io_error"
StopRun = Callable[[str, str], None]

# an error recorded for a failed call: ours carry the server's reason and what to change
ERROR_CHARS = 1000

log = structlog.get_logger("prose_sim")


class Call:
    """One model call on its way through the layers."""

    __slots__ = (
        "attempts",
        "cached",
        "cost_usd",
        "emit",
        "latency_s",
        "price",
        "replayed",
        "request",
        "request_hash",
        "request_id",
    )

    def __init__(
        self, request: ModelRequest, request_id: str, emit: Emit, price: tuple[float, float]
    ):
        self.request = request
        self.request_id = request_id
        self.emit = emit
        self.price = price  # USD per million input / output tokens
        self.request_hash = ""  # set by the Recorder
        self.attempts = 0  # the backend's attempts (0: it was not asked)
        self.latency_s = 0.0  # the answering attempt's
        self.cost_usd = 0.0
        self.cached = False  # answered from the response cache
        self.replayed: ModelResponded | None = None  # answered from a recorded log


class Layer(Protocol):
    async def complete(self, call: Call) -> Completion: ...


class CallFailed(Exception):
    """A call that failed for good, on its way up to be recorded (the Recorder) and
    turned into the caller's ``ModelCallFailed`` or a stopped run (the Breaker)."""

    def __init__(self, error: str, attempts: int, *, fatal: bool = False, replayed: bool = False):
        super().__init__(error)
        self.error = error
        self.attempts = attempts
        self.fatal = fatal  # no call to this endpoint can succeed
        self.replayed = replayed  # a failure recorded in the replayed log, not a new one


class AttemptTimedOut(TimeoutError):
    """An attempt ran past its deadline; ``error`` says which deadline and what sets it."""

    def __init__(self, error: str, cause: TimeoutError):
        super().__init__(error)
        self.error = error
        self.cause = cause  # the deadline's, or one the backend raised within it


class RunStop:
    """Stops the run once, through ``on_stop``; ``stopped`` is the message it was stopped with."""

    def __init__(self, on_stop: StopRun):
        self.on_stop = on_stop
        self.stopped = ""

    def __call__(self, kind: str, message: str) -> None:
        if not self.stopped:
            self.stopped = message
            self.on_stop(kind, message)


# --- the layers, outermost first ------------------------------------------------------


class Breaker:
    """What a failed call does to the run: the caller's ``ModelCallFailed``, or the run
    stopped (through ``stop``) at a fatal error or when the role's last ``breaker_calls``
    calls all failed after their retries (the circuit breaker). Without ``stop`` every
    failure only fails its call. ``failing`` (role -> calls failed in a row) is the run's."""

    def __init__(
        self, inner: Layer, policy: RetryPolicy, failing: dict[str, int], stop: RunStop | None
    ):
        self.inner = inner
        self.policy = policy
        self.failing = failing
        self.stop = stop

    async def complete(self, call: Call) -> Completion:
        try:
            completion = await self.inner.complete(call)
        except CallFailed as exc:
            failure = exc
        else:
            if call.attempts:  # the backend answered (not the cache, not the log)
                self.failing[call.request.role] = 0
            return completion
        request = call.request
        stop = None
        if self.stop is not None and not failure.replayed:
            stop = self._reason(request, failure)
        if stop is None:
            raise ModelCallFailed(f"{request.role}/{request.purpose}: {failure.error}")
        assert self.stop is not None
        self.stop(*stop)
        await anyio.lowlevel.checkpoint()  # the run's scope is cancelled: this raises
        raise RunStopping(self.stop.stopped)

    def _reason(self, request: ModelRequest, failure: CallFailed) -> tuple[str, str] | None:
        """(kind, message) when this failure stops the run; None when the run goes on."""
        where = f"models.{request.role} ({request.model})"
        if failure.fatal:
            return "fatal", f"{where}: {failure.error}"
        failing = self.failing.get(request.role, 0) + 1
        self.failing[request.role] = failing
        n = self.policy.breaker_calls
        if not n or failing < n:
            return None
        return (
            "breaker",
            f"{where}: its last {n} calls all failed after {failure.attempts} attempt(s) each "
            f"(last: {failure.error}); the circuit breaker ([retry] breaker_calls) stopped the run",
        )


class Recorder:
    """Records the call on the asking episode's bus: requested, then responded or failed."""

    def __init__(self, inner: Layer):
        self.inner = inner

    async def complete(self, call: Call) -> Completion:
        request = call.request
        call.request_hash = request.content_hash()
        await call.emit(
            ModelRequested(
                request_id=call.request_id,
                instance=request.instance,
                role=request.role,
                purpose=request.purpose,
                model=request.model,
                request_hash=call.request_hash,
                messages=request.messages,
            )
        )
        try:
            completion = await self.inner.complete(call)
        except CallFailed as failure:
            await call.emit(
                ModelFailed(
                    request_id=call.request_id,
                    instance=request.instance,
                    role=request.role,
                    purpose=request.purpose,
                    error=failure.error,
                    attempts=failure.attempts,
                )
            )
            raise
        if call.replayed is not None:  # recorded again with its original accounting
            await call.emit(
                msgspec.structs.replace(
                    call.replayed,
                    request_id=call.request_id,
                    instance=request.instance,
                    role=request.role,
                    purpose=request.purpose,
                )
            )
        else:
            await call.emit(
                ModelResponded(
                    request_id=call.request_id,
                    instance=request.instance,
                    role=request.role,
                    purpose=request.purpose,
                    text=completion.text,
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    latency_s=call.latency_s,
                    cached=call.cached,
                    attempts=call.attempts,
                    cost_usd=call.cost_usd,
                    finish_reason=completion.finish_reason,
                    served_model=completion.served_model,
                    cut_from_chars=completion.cut_from_chars,
                )
            )
        return msgspec.structs.replace(completion, request_id=call.request_id)


class Replay:
    """Serves the answers of an earlier log (replay, resume) before anything else."""

    def __init__(self, inner: Layer, recorded: RecordedResponses):
        self.inner = inner
        self.recorded = recorded

    async def complete(self, call: Call) -> Completion:
        logged = self.recorded.take(call.request, call.request_hash)
        match logged:
            case None:
                return await self.inner.complete(call)
            case ModelFailed(error=error, attempts=attempts):
                raise CallFailed(error, attempts, replayed=True)
            case ModelResponded():
                call.replayed = logged
                return Completion(
                    text=logged.text,
                    input_tokens=logged.input_tokens,
                    output_tokens=logged.output_tokens,
                    finish_reason=logged.finish_reason,
                    served_model=logged.served_model,
                    cut_from_chars=logged.cut_from_chars,
                )


class Cache:
    """The response cache: a stored answer is served at once; an identical request asked
    while one is in flight waits for its answer (``in_flight``, by cache key, is the run's);
    a new answer is stored, and a cache that cannot be written stops the run (``stop``;
    without it the error is raised)."""

    def __init__(
        self,
        inner: Layer,
        cache: ResponseCache,
        identity: str,
        in_flight: dict[str, anyio.Event],
        stop: RunStop | None,
    ):
        self.inner = inner
        self.cache = cache
        self.identity = identity
        self.in_flight = in_flight
        self.stop = stop

    async def complete(self, call: Call) -> Completion:
        key = cache_key(self.identity, call.request)
        while True:
            stored = self.cache.get(key)
            if stored is not None:
                call.cached = True
                return stored
            pending = self.in_flight.get(key)
            if pending is None:
                break
            await pending.wait()  # an identical request is being asked: wait for its answer
        self.in_flight[key] = anyio.Event()
        try:
            completion = await self.inner.complete(call)
            self._store(key, completion)
            return completion
        finally:
            self.in_flight.pop(key).set()

    def _store(self, key: str, completion: Completion) -> None:
        try:
            self.cache.put(key, completion)
        except Exception as exc:  # sqlite3.OperationalError: database or disk is full, ...
            if self.stop is None:
                raise
            path = getattr(self.cache, "path", "the response cache")
            self.stop("io_error", f"{path}: cannot write the response cache: {exc}")


class Budget:
    """Sends a call on only while it fits the run's ``[budget]``, else waits for calls in
    flight to end; when one does not fit and nothing is in flight, stops the run
    (``stop("budget", message)``). See ``models.budget``."""

    def __init__(self, inner: Layer, state: BudgetState, stop: RunStop):
        self.inner = inner
        self.state = state
        self.stop = stop

    async def complete(self, call: Call) -> Completion:
        state = self.state
        request = call.request
        most = state.most(request, call.price)
        while not state.fits(most):
            if not state.in_flight:
                self.stop("budget", state.reached_message(request.role, request.purpose, most))
                state.wake()  # every call waiting here stops too
                await anyio.lowlevel.checkpoint()  # the run's scope is cancelled: this raises
                raise RunStopping(self.stop.stopped)
            await state.changed()
        state.hold(most)
        spent = Spend()
        try:
            completion = await self.inner.complete(call)
            tokens = completion.input_tokens + completion.output_tokens
            spent = Spend(usd=call.cost_usd, calls=1, tokens=tokens)
            return completion
        except CallFailed:
            spent = Spend(calls=1)  # asked, and failed after its retries
            raise
        finally:
            state.settle(most, spent)


class Cost:
    """Prices an answer by the call's USD per million input and output tokens."""

    def __init__(self, inner: Layer):
        self.inner = inner

    async def complete(self, call: Call) -> Completion:
        completion = await self.inner.complete(call)
        input_price, output_price = call.price
        call.cost_usd = (
            completion.input_tokens * input_price + completion.output_tokens * output_price
        ) / 1e6
        return completion


class Backoff:
    """The waits between attempts, the run's: full-jitter exponential backoff (one seeded
    generator: jitter never affects results), at least a server's Retry-After, which is
    cut to ``[retry] max_retry_after_s`` (said once)."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self._jitter = random.Random(0)
        self._capped_said = False

    def delay(self, attempt: int, retry_after: float | None, request: ModelRequest) -> float:
        delay = self.policy.delay(attempt, self._jitter)
        if retry_after is not None:
            delay = max(delay, self._capped(retry_after, request))
        return delay

    def _capped(self, retry_after: float, request: ModelRequest) -> float:
        cap = self.policy.max_retry_after_s
        if retry_after <= cap:
            return retry_after
        if not self._capped_said:
            self._capped_said = True
            log.warning(
                "retry_after_capped",
                role=request.role,
                asked_s=retry_after,
                waiting_s=cap,
                detail="the server asked for a longer wait than [retry] max_retry_after_s",
            )
        return cap


class Retry:
    """Attempts a call up to ``[retry] attempts`` times, classifying each failure: a fatal
    error (or an endpoint unreachable before it ever answered, unless the backend fails
    over to others) and one retrying cannot fix end the call at once; others are retried
    after the backoff. The last error (kept whole up to ``ERROR_CHARS``) and the attempts
    made go up in ``CallFailed``."""

    def __init__(self, inner: Layer, policy: RetryPolicy, backoff: Backoff, *, fails_over: bool):
        self.inner = inner
        self.policy = policy
        self.backoff = backoff
        self.fails_over = fails_over
        self.answered = False  # the backend answered once: unreachable now is a blip

    async def complete(self, call: Call) -> Completion:
        attempts = self.policy.attempts
        error = ""
        attempt = 0
        fatal = False
        while attempt < attempts:
            attempt += 1
            retry_after = None
            try:
                completion = await self.inner.complete(call)
            except Exception as exc:  # any backend failure is classified, retried, then recorded
                if isinstance(exc, AttemptTimedOut):  # named by its deadline, classified as itself
                    error = exc.error
                    exc = exc.cause
                else:  # ours carry the server's reason and what to change: kept whole
                    error = describe_error(exc, limit=ERROR_CHARS)
                if isinstance(exc, ModelCallError):
                    retry_after = exc.retry_after
                    fatal = exc.fatal or (
                        exc.unreachable and not (self.answered or self.fails_over)
                    )
                    if fatal or not exc.retryable:
                        break
            else:
                self.answered = True
                call.attempts = attempt
                return completion
            if attempt < attempts:
                await anyio.sleep(self.backoff.delay(attempt, retry_after, call.request))
        raise CallFailed(error, attempt, fatal=fatal)


class Limits:
    """One endpoint's requests and tokens per window and adaptive concurrency cap, around
    each attempt: a 429 counts as throttled, the reported tokens correct the estimate."""

    def __init__(self, inner: Layer, layers: EndpointLayers):
        self.inner = inner
        self.layers = layers

    async def complete(self, call: Call) -> Completion:
        layers = self.layers
        generation, charged = await layers.enter(estimate_request_tokens(call.request))
        outcome, actual = "failed", None
        try:
            completion = await self.inner.complete(call)
            outcome = "ok"
            actual = completion.input_tokens + completion.output_tokens
            return completion
        except ModelCallError as exc:
            if exc.throttled:
                outcome = "throttled"
            raise
        finally:
            layers.exit(generation, charged, outcome, actual)


class Attempt:
    """One attempt at the backend, timed (the call's latency), within its deadline:
    ``[retry] timeout_s``, else for a remote server the default from the request's
    ``max_new_tokens`` (``default_timeout_s``), else none. The deadline bounds the whole
    attempt: bytes trickling in do not extend it."""

    def __init__(self, backend: Backend, policy: RetryPolicy):
        self.backend = backend
        self.timeout_s = policy.timeout_s
        self.remote = isinstance(backend, Remote) and backend.remote

    def deadline(self, request: ModelRequest) -> float | None:
        if self.timeout_s is not None:
            return self.timeout_s
        if self.remote:
            from prose_sim.models.backends.openai_compat import default_timeout_s

            return default_timeout_s(request.params.max_new_tokens)
        return None

    async def complete(self, call: Call) -> Completion:
        request = call.request
        started = time.perf_counter()
        if self.timeout_s is None and not self.remote:  # no deadline (in-process backends)
            completion = await self.backend.complete(request)
        else:
            deadline = self.deadline(request)
            assert deadline is not None
            try:
                with anyio.fail_after(deadline):
                    completion = await self.backend.complete(request)
            except TimeoutError as exc:
                raise AttemptTimedOut(self._timed_out(deadline, request), exc) from exc
        call.latency_s = time.perf_counter() - started
        return completion

    def _timed_out(self, deadline: float, request: ModelRequest) -> str:
        return f"TimeoutError: no answer within the attempt's {deadline:g} s " + (
            "([retry] timeout_s)"
            if self.timeout_s is not None
            else f"(the default for max_new_tokens = {request.params.max_new_tokens};"
            " [retry] timeout_s sets it)"
        )
