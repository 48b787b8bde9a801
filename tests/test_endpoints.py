"""Several endpoints serving one model: the endpoint pool.

Real loopback servers (prose_sim/testing/chat_server.py) for the load spread and
the whole run where one server dies halfway; fake members and a fake clock for
ejection, cooldown and the per-endpoint limits. Assertions are on counts,
never on durations.
"""

from __future__ import annotations

import json

import anyio
import msgspec
import pytest

from prose_sim.config import RunOptions
from prose_sim.errors import UsageError
from prose_sim.eventlog import read_events
from prose_sim.events import ModelRequested, ModelResponded
from prose_sim.models.backends.openai_compat import OpenAIBackend, OpenAISettings
from prose_sim.models.backends.pool import (
    EndpointPool,
    MemberLayers,
    PoolMember,
    PoolSettings,
)
from prose_sim.models.gateway import Gateway, RetryPolicy
from prose_sim.models.limits import EndpointLayers, EndpointLimits
from prose_sim.models.protocol import (
    Completion,
    ModelRequest,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    SamplingParams,
)
from prose_sim.runtime.backends import build_models
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario
from prose_sim.testing.chat_server import ChatServer

pytestmark = pytest.mark.anyio

FAKE_KEY = "sk-test-FAKEKEY-pool-0123456789"
KEY_ENV = "PROSE_SIM_POOL_TEST_KEY"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def servers():
    with ChatServer(latency_s=0.02) as one, ChatServer(latency_s=0.02) as two:
        yield one, two


def request(i: int) -> ModelRequest:
    return ModelRequest(
        role="agent",
        purpose="infer",
        episode_id="e",
        instance=i,
        model="m",
        messages=[{"role": "user", "content": f"item {i} " + "word " * 10}],
        params=SamplingParams(max_new_tokens=16, seed=i),
    )


class Recorder:
    def __init__(self):
        self.events: list[tuple[type, dict]] = []

    async def __call__(self, event):
        self.events.append((type(event), msgspec.structs.asdict(event)))


class FakeEndpoint:
    """A member backend that is up or down (raising as a refused connection does)."""

    def __init__(self, name: str):
        self.name = name
        self.down = False
        self.calls = 0
        self.answered = 0
        self.error: Exception | None = None  # raised once, instead of answering

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.down:
            raise RetryableModelError(f"connection to {self.name} failed: ConnectError")
        self.answered += 1
        return Completion(text=f"from {self.name}", input_tokens=3, output_tokens=2)

    async def aclose(self) -> None:
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_pool(n: int = 2, **settings) -> tuple[EndpointPool, list[FakeEndpoint], Clock]:
    fakes = [FakeEndpoint(f"e{i}") for i in range(n)]
    clock = Clock()
    pool = EndpointPool(
        [PoolMember(f.name, f) for f in fakes], PoolSettings(**settings), clock=clock
    )
    return pool, fakes, clock


async def attempt(pool: EndpointPool, i: int = 0) -> str:
    try:
        return (await pool.complete(request(i))).text
    except RetryableModelError:
        return "failed"


# --- balancing ---------------------------------------------------------------------


async def test_load_is_spread_over_both_endpoints_by_outstanding_requests(servers):
    one, two = servers
    backends = [
        OpenAIBackend(
            OpenAISettings(base_url=s.base_url, api_key_env=KEY_ENV, max_connections=64), FAKE_KEY
        )
        for s in servers
    ]
    members = [
        PoolMember(
            b.base_url, b, EndpointLayers(EndpointLimits(max_concurrency=64, start_concurrency=64))
        )
        for b in backends
    ]
    pool = EndpointPool(members)
    gateway = Gateway({"pool": pool}, RetryPolicy(attempts=1))
    emit = Recorder()
    try:
        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(gateway.complete, "pool", request(i), emit)
    finally:
        await pool.aclose()
    assert one.served + two.served == 60
    assert one.served >= 15 and two.served >= 15, (one.served, two.served)
    stats = pool.stats()
    assert [s["pool_requests"] for s in stats] == [one.served, two.served]
    assert all(s["pool_outstanding_peak"] >= 2 for s in stats)  # they were busy at once
    assert all(m.outstanding == 0 for m in members)


async def test_a_busy_endpoint_gets_the_next_request_only_when_the_other_is_busier():
    pool, fakes, _ = fake_pool()
    slow = anyio.Event()

    async def never_done(request):  # e0 holds its request until released
        fakes[0].calls += 1
        await slow.wait()
        return Completion(text="from e0", input_tokens=1, output_tokens=1)

    fakes[0].complete = never_done
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.complete, request(0))
        await anyio.wait_all_tasks_blocked()  # e0 holds it
        assert pool.members[0].outstanding == 1
        # e0 has one outstanding: the next ones go to e1 (idle each time)
        assert [await attempt(pool, i) for i in range(1, 5)] == ["from e1"] * 4
        slow.set()
    assert fakes[0].calls == 1 and fakes[1].calls == 4


# --- ejection and cooldown -----------------------------------------------------------


async def test_a_failing_endpoint_is_taken_out_then_probed_after_its_cooldown_and_back():
    pool, (up, flaky), clock = fake_pool(failures_to_eject=3, cooldown_s=5.0, max_cooldown_s=12.0)
    flaky.down = True
    outcomes = [await attempt(pool, i) for i in range(20)]
    assert outcomes.count("failed") == 3  # three in a row, then it is out
    assert flaky.calls == 3
    member = pool.members[1]
    assert member.ejected_until == clock.now + 5.0 and member.ejections == 1
    assert up.answered == 17  # everything else went to the healthy endpoint

    clock.now += 4.9  # still cooling down
    assert {await attempt(pool, i) for i in range(5)} == {"from e0"} and flaky.calls == 3

    clock.now += 0.2  # cooldown over, still down: the probe fails, out again for twice as long
    assert await attempt(pool) == "failed"
    assert flaky.calls == 4 and member.ejections == 2 and member.ejected_until == clock.now + 10.0
    assert {await attempt(pool, i) for i in range(5)} == {"from e0"} and flaky.calls == 4

    clock.now += 10.0  # the endpoint recovered meanwhile: the probe succeeds, it is back
    flaky.down = False
    assert await attempt(pool) == "from e1"
    assert member.ejected_until is None and member.consecutive_failures == 0
    before = flaky.answered
    assert {await attempt(pool, i) for i in range(10)} == {"from e0", "from e1"}
    assert flaky.answered - before == 5  # it gets its share again

    flaky.down = True  # a new outage starts again from the first cooldown
    while member.ejected_until is None:
        await attempt(pool)
    assert member.ejected_until == clock.now + 5.0 and member.ejections == 3
    stats = pool.stats()[1]
    assert stats["pool_ejections"] == 3 and stats["pool_ejected"] is True
    assert stats["pool_endpoint_failures"] == flaky.calls - flaky.answered


async def test_the_cooldown_doubles_up_to_its_cap():
    pool, (_, b), clock = fake_pool(failures_to_eject=1, cooldown_s=4.0, max_cooldown_s=10.0)
    b.down = True
    member = pool.members[1]
    cooldowns = []
    for _ in range(4):
        if member.ejected_until is not None:
            clock.now = member.ejected_until  # its cooldown is over: the next request probes it
        before = member.ejections
        while member.ejections == before:
            await attempt(pool)
        cooldowns.append(member.ejected_until - clock.now)
    assert cooldowns == [4.0, 8.0, 10.0, 10.0]


async def test_429s_and_bad_requests_do_not_take_an_endpoint_out():
    pool, (a, b), _ = fake_pool(failures_to_eject=2)
    for error in [RateLimitedError("429"), PermanentModelError("400"), RateLimitedError("429")] * 3:
        for fake in (a, b):
            fake.error = error
        for i in range(2):
            with pytest.raises((RateLimitedError, PermanentModelError)):
                await pool.complete(request(i))
    assert all(m.ejected_until is None and m.ejections == 0 for m in pool.members)
    assert a.calls == b.calls == 9


async def test_when_every_endpoint_is_out_the_one_back_first_serves():
    pool, (a, b), clock = fake_pool(failures_to_eject=1, cooldown_s=5.0)
    a.down = b.down = True
    await attempt(pool)  # a out until +5
    clock.now += 1
    await attempt(pool)  # b out until +6
    assert all(m.ejected_until is not None for m in pool.members)
    a.down = b.down = False
    assert await attempt(pool) == "from e0"  # not a failure: a served, and is back
    assert pool.members[0].ejected_until is None and pool.members[1].ejected_until is not None


async def test_a_timed_out_attempt_counts_against_the_endpoint():
    pool, (a, _), _ = fake_pool(failures_to_eject=1)
    hang = anyio.Event()

    async def hangs(request):
        await hang.wait()

    a.complete = hangs
    gateway = Gateway({"pool": pool}, RetryPolicy(attempts=3, backoff_s=0.0, timeout_s=0.05))
    completion = await gateway.complete("pool", request(0), Recorder())
    assert completion.text == "from e1"  # the retry went to the other endpoint
    assert pool.members[0].ejections == 1 and pool.members[0].outstanding == 0


# --- per-endpoint limits -----------------------------------------------------------


async def test_each_endpoint_has_its_own_rate_limit():
    # rpm 10 per endpoint (a bucket starting at 9): 16 requests at once pass without
    # waiting for the window, more than one endpoint's rpm
    limits = EndpointLimits(rpm=10, window_s=3600.0)
    fakes = [FakeEndpoint("e0"), FakeEndpoint("e1")]
    members = [PoolMember(f.name, f, EndpointLayers(limits)) for f in fakes]
    pool = EndpointPool(members)
    done = []

    async def one(i: int) -> None:
        await pool.complete(request(i))
        done.append(i)

    with anyio.move_on_after(30):  # a guard against a hang; not a timing assertion
        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(one, i)
    assert len(done) == 16 > limits.rpm
    assert fakes[0].answered == fakes[1].answered == 8
    assert members[0].layers is not members[1].layers


SCENARIO = """
name = "pool"
seeds = [1235, 9328]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[metrics]
bertscore = ""
[retry]
attempts = 8
backoff_s = 0.01
max_backoff_s = 0.05
timeout_s = 10
{models}
"""


def models_block(urls: list[str], **extra) -> str:
    lines = []
    for role in ("user", "agent", "judge"):
        lines += [
            f"[models.{role}]",
            'backend = "openai"',
            'model = "Qwen/Qwen2.5-7B-Instruct"',
            f"base_urls = {json.dumps(urls)}",
            f'api_key_env = "{KEY_ENV}"',
        ]
        lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines)


def test_build_models_gives_each_endpoint_its_own_layers_and_the_pool_none(write_scenario, key):
    urls = ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]
    scenario = load_scenario(
        write_scenario(SCENARIO.format(models=models_block(urls, rpm=50, max_concurrency=8)))
    )
    built = build_models(scenario)
    try:
        pool_keys = {model.backend for model in built.roles.values()}
        assert len(pool_keys) == 1  # the roles naming the same list share one pool
        (pool_key,) = pool_keys
        pool = built.backends[pool_key]
        assert isinstance(pool, EndpointPool) and len(pool.members) == 2
        assert pool_key not in built.layers  # the gateway applies no limits to the pool ...
        members = [f"openai:{url}:{KEY_ENV}" for url in urls]
        assert set(built.layers) == set(members)  # ... the pool applies each endpoint's own
        layers = [built.layers[m] for m in members]
        assert layers[0] is not layers[1]
        assert all(isinstance(x, MemberLayers) for x in layers)
        assert [m.layers for m in pool.members] == layers
        assert all(x.limits.rpm == 50 and x.limits.max_concurrency == 8 for x in layers)
        assert built.cache_ids[pool_key] == "openai|" + "|".join(sorted(urls))
        assert sum(isinstance(b, OpenAIBackend) for b in built.built) == 2
        assert {"rpm", "pool_requests", "pool_ejections"} <= set(layers[0].stats())
    finally:
        anyio.run(built.aclose)


def test_a_role_on_one_of_the_pools_endpoints_shares_its_client_and_limits(write_scenario, key):
    urls = ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]
    text = SCENARIO.format(models=models_block(urls, rpm=50))
    # user (the first role in the block) on the first server alone; agent and judge on both
    text = text.replace(f"base_urls = {json.dumps(urls)}", f'base_url = "{urls[0]}"', 1)
    built = build_models(load_scenario(write_scenario(text)))
    try:
        single = built.roles["user"].backend
        assert single == f"openai:{urls[0]}:{KEY_ENV}"
        pool = built.backends[built.roles["agent"].backend]
        assert pool.members[0].backend is built.backends[single]  # one client ...
        assert (
            pool.members[0].layers is built.layers[single]
        )  # ... one set of limits for that server
        assert sum(isinstance(b, OpenAIBackend) for b in built.built) == 2
        assert set(built.layers) == {f"openai:{u}:{KEY_ENV}" for u in urls}
    finally:
        anyio.run(built.aclose)


def test_base_url_and_base_urls_together_are_an_error(write_scenario):
    text = SCENARIO.format(models=models_block(["http://a/v1", "http://b/v1"]))
    text = text.replace("[models.agent]\n", '[models.agent]\nbase_url = "http://c/v1"\n')
    with pytest.raises(UsageError, match=r"models\.agent\.base_urls.*not both"):
        load_scenario(write_scenario(text))


# --- the acceptance test: a run where one server stops halfway ----------------------


async def test_a_run_survives_one_server_stopping_halfway(write_scenario, tmp_path, key):
    with ChatServer(latency_s=0.005) as one, ChatServer(latency_s=0.005) as two:
        path = write_scenario(SCENARIO.format(models=models_block([one.base_url, two.base_url])))
        scenario = load_scenario(path)
        at_stop: dict[str, int] = {}

        async def stop_two_after(n: int) -> None:
            # the server counts requests in its own thread and signals nothing: poll, with a
            # deadline as a guard against a hang (not a timing assertion)
            with anyio.fail_after(60):
                while len(two.requests) < n:  # noqa: ASYNC110
                    await anyio.sleep(0.002)
            # from now on: kept-alive connections are dropped, new ones refused
            two.faults.extend(["drop"] * 100_000)
            at_stop.update(one=one.served, two=two.served)
            await anyio.to_thread.run_sync(two.stop)

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_two_after, 15)
            outcome = await execute(
                prepare(
                    scenario,
                    tmp_path / "run",
                    RunOptions(progress="off", cache_path=str(tmp_path / "cache.sqlite3")),
                )
            )
            tg.cancel_scope.cancel()

    assert at_stop, "server 2 never got 15 requests"
    assert outcome.status == "completed" and outcome.instances_failed == 0
    assert outcome.model_failures == 0
    assert outcome.failed_attempts >= 1  # requests did fail at server 2 ...
    assert one.served > at_stop["one"] + 10  # ... and the load moved to server 1
    # (server 2 answered at most what it had in hand as it stopped)
    assert two.served - at_stop["two"] < one.served - at_stop["one"]
    calls = outcome.model_calls - outcome.cached_calls
    assert one.served + two.served == calls  # every request answered once
    events = list(read_events(tmp_path / "run" / "events.jsonl"))
    requested = {e.request_id for e in events if isinstance(e, ModelRequested)}
    responded = {e.request_id for e in events if isinstance(e, ModelResponded)}
    assert requested and requested == responded  # none lost

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    endpoints = {e["endpoint"]: e for e in summary["endpoints"]}
    first, second = (endpoints[f"openai:{s.base_url}:{KEY_ENV}"] for s in (one, two))
    assert second["pool_ejections"] >= 1 and second["pool_endpoint_failures"] >= 3
    assert first["pool_ejections"] == 0 and first["pool_ok"] == one.served
    assert second["pool_ok"] == two.served
