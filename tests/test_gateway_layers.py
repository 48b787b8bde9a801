"""The gateway's layers (prose_sim/models/layers.py), rule by rule, on fake backends.

Each test names the rule; no sleeps (backoff 0), no timings asserted.
"""

from __future__ import annotations

import pytest

from prose_sim.config.retry import RetryPolicy
from prose_sim.errors import (
    FatalModelError,
    ModelCallFailed,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    RunStopping,
)
from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.cache import ResponseCache
from prose_sim.models.gateway import Gateway
from prose_sim.models.layers import (
    Attempt,
    Breaker,
    Cache,
    Cost,
    Limits,
    Recorder,
    Replay,
    Retry,
)
from prose_sim.models.limits import EndpointLayers, EndpointLimits
from prose_sim.models.protocol import Completion, ModelRequest
from prose_sim.models.recorded import RecordedResponses

pytestmark = pytest.mark.anyio

NO_WAIT = RetryPolicy(attempts=3, backoff_s=0.0, breaker_calls=2)


class Script:
    """A backend answering from a list: an exception is raised, a string answered."""

    def __init__(self, *outcomes: object):
        self.outcomes = list(outcomes)
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "fine"
        if isinstance(outcome, BaseException):
            raise outcome
        return Completion(text=str(outcome), input_tokens=1000, output_tokens=500)

    async def aclose(self) -> None:
        pass


class Log:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.stops: list[tuple[str, str, int]] = []  # (kind, message, events recorded then)

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def stop(self, kind: str, message: str) -> None:
        self.stops.append((kind, message, len(self.events)))


def ask(role: str = "agent", text: str = "hello") -> ModelRequest:
    return ModelRequest(
        role=role,
        purpose="infer",
        episode_id="e",
        instance=0,
        model="m1",
        messages=[{"role": "user", "content": text}],
    )


def layer_types(gateway: Gateway, key: str) -> list[str]:
    layer, names = gateway._stacks[key], []
    while True:
        names.append(type(layer).__name__)
        if isinstance(layer, Attempt):
            return names
        layer = layer.inner  # type: ignore[attr-defined]


async def test_the_layers_are_composed_outermost_first_leaving_out_what_a_backend_lacks(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite3")
    full = Gateway(
        {"api": Script(), "plain": Script()},
        NO_WAIT,
        layers={"api": EndpointLayers(EndpointLimits())},
        cache=cache,
        cache_ids={"api": "openai:x"},
        recorded=RecordedResponses.from_events([]),
    )
    assert layer_types(full, "api") == [
        t.__name__ for t in (Breaker, Recorder, Replay, Cache, Cost, Retry, Limits, Attempt)
    ]
    assert layer_types(full, "plain") == [
        t.__name__ for t in (Breaker, Recorder, Replay, Cost, Retry, Attempt)
    ]
    cache.close()


async def test_an_answer_is_recorded_with_its_attempts_and_its_price():
    log = Log()
    gateway = Gateway({"m": Script(RetryableModelError("503"), "ok")}, NO_WAIT)
    completion = await gateway.complete("m", ask(), log, (2.0, 4.0))
    requested, responded = log.events
    assert isinstance(requested, ModelRequested) and isinstance(responded, ModelResponded)
    assert responded.attempts == 2 and not responded.cached
    assert responded.cost_usd == (1000 * 2.0 + 500 * 4.0) / 1e6
    assert completion.request_id == requested.request_id == responded.request_id


async def test_a_call_failing_every_attempt_is_recorded_once_and_raised_as_model_call_failed():
    log = Log()
    backend = Script(*[RetryableModelError("503 busy")] * 3)
    gateway = Gateway({"m": backend}, NO_WAIT)
    with pytest.raises(ModelCallFailed, match=r"^agent/infer: RetryableModelError: 503 busy$"):
        await gateway.complete("m", ask(), log)
    assert backend.calls == 3
    assert [type(e) for e in log.events] == [ModelRequested, ModelFailed]
    assert log.events[-1].attempts == 3  # type: ignore[attr-defined]


async def test_a_fatal_error_is_recorded_before_the_run_is_stopped():
    log = Log()
    gateway = Gateway({"m": Script(FatalModelError("401 wrong key"))}, NO_WAIT, on_stop=log.stop)
    with pytest.raises(RunStopping):
        await gateway.complete("m", ask(), log)
    ((kind, message, recorded),) = log.stops
    assert kind == "fatal" and message == "models.agent (m1): FatalModelError: 401 wrong key"
    assert recorded == 2  # requested and failed were both on the bus first
    assert gateway.stopped == message


async def test_the_breaker_trips_on_a_roles_consecutive_failures_and_a_success_resets_it():
    log = Log()
    fail = [RetryableModelError("500")] * 3
    gateway = Gateway({"m": Script(*fail, "ok", *fail, *fail)}, NO_WAIT, on_stop=log.stop)
    with pytest.raises(ModelCallFailed):
        await gateway.complete("m", ask(), log)
    await gateway.complete("m", ask(), log)  # resets the count
    with pytest.raises(ModelCallFailed):
        await gateway.complete("m", ask(), log)
    assert log.stops == []
    with pytest.raises(RunStopping):
        await gateway.complete("m", ask(), log)
    ((kind, message, _),) = log.stops
    assert kind == "breaker" and "its last 2 calls all failed after 3 attempt(s) each" in message


async def test_a_cache_hit_is_recorded_without_attempts_or_cost_and_does_not_reset_the_breaker(
    tmp_path,
):
    log = Log()
    cache = ResponseCache(tmp_path / "c.sqlite3")
    fail = [RetryableModelError("500")] * 3
    backend = Script("cached answer", *fail, *fail)
    gateway = Gateway({"m": backend}, NO_WAIT, cache=cache, cache_ids={"m": "id"}, on_stop=log.stop)
    await gateway.complete("m", ask(text="same"), log, (1.0, 1.0))
    with pytest.raises(ModelCallFailed):
        await gateway.complete("m", ask(text="other"), log)
    hit = await gateway.complete("m", ask(text="same"), log, (1.0, 1.0))
    assert hit.text == "cached answer" and backend.calls == 4
    responded = log.events[-1]
    assert isinstance(responded, ModelResponded)
    assert (responded.cached, responded.attempts, responded.cost_usd) == (True, 0, 0.0)
    with pytest.raises(RunStopping):  # the hit did not count as the role answering
        await gateway.complete("m", ask(text="third"), log)
    cache.close()


async def test_a_replayed_failure_is_recorded_but_never_counts_toward_the_breaker():
    log = Log()
    request = ask()
    logged: list[Event] = []
    for n in range(3):  # three recorded failures of the same request
        logged += [
            ModelRequested(
                request_id=f"old{n}",
                episode_id="e",
                instance=0,
                role="agent",
                purpose="infer",
                model="m1",
                request_hash=request.content_hash(),
                messages=request.messages,
            ),
            ModelFailed(
                request_id=f"old{n}",
                episode_id="e",
                instance=0,
                role="agent",
                purpose="infer",
                error="E: x",
                attempts=3,
            ),
        ]
    recorded = RecordedResponses.from_events(logged, failures=True)
    gateway = Gateway({"m": Script()}, NO_WAIT, recorded=recorded, on_stop=log.stop)
    for _ in range(3):
        with pytest.raises(ModelCallFailed, match="E: x"):
            await gateway.complete("m", request, log)
    assert log.stops == []


async def test_the_limits_count_a_429_as_throttled_and_release_the_concurrency_slot():
    layers = EndpointLayers(EndpointLimits(start_concurrency=4))
    gateway = Gateway({"m": Script(RateLimitedError("429"), "ok")}, NO_WAIT, layers={"m": layers})
    await gateway.complete("m", ask(), Log())
    assert layers.throttled == 1 and layers.concurrency.halvings == 1
    assert layers.concurrency.in_flight == 0


class GaveUp(PermanentModelError, TimeoutError):
    """A backend's own timeout that retrying cannot fix."""


async def test_a_timeout_within_the_deadline_is_named_by_it_and_classified_as_itself():
    log = Log()
    backend = Script(GaveUp("gave up"))
    gateway = Gateway({"m": backend}, RetryPolicy(attempts=3, backoff_s=0.0, timeout_s=5))
    with pytest.raises(ModelCallFailed):
        await gateway.complete("m", ask(), log)
    failed = log.events[-1]
    assert isinstance(failed, ModelFailed)
    assert failed.error == "TimeoutError: no answer within the attempt's 5 s ([retry] timeout_s)"
    assert failed.attempts == 1 and backend.calls == 1  # permanent: not retried
