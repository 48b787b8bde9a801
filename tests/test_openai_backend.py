"""The openai backend and the gateway's shared layers, against a real loopback server.

The server (prose_sim/testing/chat_server.py) is a real HTTP server on 127.0.0.1 that speaks
the chat-completions API, injects faults on request and enforces its own
budget. Assertions are on counts, never on durations.
"""

from __future__ import annotations

import json

import anyio
import msgspec
import pytest
from conftest import SCENARIOS

from prose_sim.cli import main
from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import ModelFailed, ModelResponded
from prose_sim.models.backends.openai_compat import OpenAIBackend, OpenAISettings
from prose_sim.models.cache import ResponseCache
from prose_sim.models.gateway import Gateway, RetryPolicy
from prose_sim.models.limits import AdaptiveConcurrency, EndpointLayers, EndpointLimits
from prose_sim.models.protocol import (
    ModelCallFailed,
    ModelRequest,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    SamplingParams,
)
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario
from prose_sim.testing.chat_server import ChatServer

pytestmark = pytest.mark.anyio

FAKE_KEY = "sk-test-FAKEKEY-0123456789abcdef"
KEY_ENV = "PROSE_SIM_TEST_KEY"


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


def request(i: int, max_tokens: int = 16) -> ModelRequest:
    return ModelRequest(
        role="user",
        purpose="demonstrate",
        episode_id="e",
        instance=i,
        model="gpt-test",
        messages=[{"role": "user", "content": f"write about item {i} " + "word " * 10}],
        params=SamplingParams(max_new_tokens=max_tokens, seed=i),
    )


class Recorder:
    def __init__(self):
        self.events: list[tuple[type, dict]] = []

    async def __call__(self, event):
        self.events.append((type(event), msgspec.structs.asdict(event)))

    def of(self, kind):
        return [f for k, f in self.events if k is kind]


def backend(server: ChatServer, connections: int = 100) -> OpenAIBackend:
    return OpenAIBackend(
        OpenAISettings(base_url=server.base_url, api_key_env=KEY_ENV, max_connections=connections),
        FAKE_KEY,
    )


async def run_requests(gateway: Gateway, n: int, emit: Recorder) -> list[str]:
    outcomes: list[str] = []

    async def one(i: int) -> None:
        try:
            await gateway.complete("api", request(i), emit)
            outcomes.append("ok")
        except ModelCallFailed:
            outcomes.append("failed")

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return outcomes


# --- the backend alone ----------------------------------------------------------


async def test_backend_turns_a_request_into_a_completion_with_usage(server):
    b = backend(server)
    try:
        completion = await b.complete(request(1))
    finally:
        await b.aclose()
    assert completion.text.startswith("Preferences:")
    assert completion.input_tokens > 0 and completion.output_tokens > 0
    body = server.requests[0]["body"]
    assert body["model"] == "gpt-test" and body["seed"] == 1 and body["max_tokens"] == 16
    assert server.requests[0]["authorization"] == f"Bearer {FAKE_KEY}"


async def test_backend_classifies_errors_and_the_sdk_does_not_retry(server):
    server.retry_after_s = 7
    server.faults.extend(["429", "500", "drop", "401"])
    b = backend(server)
    try:
        with pytest.raises(RateLimitedError) as limited:
            await b.complete(request(1))
        assert limited.value.retry_after == 7
        with pytest.raises(RetryableModelError):
            await b.complete(request(2))
        with pytest.raises(RetryableModelError):
            await b.complete(request(3))
        with pytest.raises(PermanentModelError) as denied:
            await b.complete(request(4))
    finally:
        await b.aclose()
    assert len(server.requests) == 4  # max_retries=0: one HTTP request per call
    assert FAKE_KEY not in str(denied.value)  # the server echoed it; we scrubbed it


async def test_httpx_pool_is_sized_to_the_configured_concurrency(server):
    b = backend(server, connections=700)
    try:
        pool = b._http._transport._pool
        assert pool._max_connections == 700
    finally:
        await b.aclose()


# --- the gateway's layers ---------------------------------------------------------


async def test_injected_faults_every_request_completes_or_fails_once(server):
    server.faults.extend(["429", "500", "drop", "slow", "500", "429"] * 2)
    server.slow_s = 1.0
    b = backend(server)
    layers = EndpointLayers(EndpointLimits(max_concurrency=8, start_concurrency=8))
    gateway = Gateway(
        {"api": b},
        RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=0.5),
        layers={"api": layers},
    )
    emit = Recorder()
    try:
        outcomes = await run_requests(gateway, 30, emit)
    finally:
        await b.aclose()
    responded, failed = emit.of(ModelResponded), emit.of(ModelFailed)
    ids = [e["request_id"] for e in responded + failed]
    assert len(outcomes) == 30 and len(ids) == 30 and len(set(ids)) == 30  # none lost, none twice
    assert len(responded) == outcomes.count("ok")
    assert sum(e["attempts"] > 1 for e in responded + failed) >= 1
    assert layers.throttled >= 1


async def test_a_request_that_keeps_failing_is_recorded_failed_not_raised_twice(server):
    server.faults.extend(["500"] * 3)
    b = backend(server)
    gateway = Gateway({"api": b}, RetryPolicy(attempts=3, backoff_s=0.0))
    emit = Recorder()
    try:
        with pytest.raises(ModelCallFailed):
            await gateway.complete("api", request(1), emit)
    finally:
        await b.aclose()
    assert len(emit.of(ModelFailed)) == 1 and emit.of(ModelFailed)[0]["attempts"] == 3
    assert len(server.requests) == 3


async def test_400_and_401_are_not_retried(server):
    server.faults.append("401")
    b = backend(server)
    gateway = Gateway({"api": b}, RetryPolicy(attempts=5, backoff_s=0.0))
    emit = Recorder()
    try:
        with pytest.raises(ModelCallFailed) as failed:
            await gateway.complete("api", request(1), emit)
    finally:
        await b.aclose()
    assert len(server.requests) == 1
    assert emit.of(ModelFailed)[0]["attempts"] == 1
    assert FAKE_KEY not in str(failed.value) and FAKE_KEY not in emit.of(ModelFailed)[0]["error"]


async def test_limits_matching_the_server_budget_see_no_429():
    # budget: 100 requests and 6000 tokens per 10 s (10 requests/s); 120 requests of
    # ~34 tokens each, all at once. The gateway's bucket starts at 90% of the budget:
    # the rest (1 s at this rate) absorbs requests that reach the server later than
    # they left (new connections, a busy machine)
    with ChatServer(rpm=100, tpm=6000, window_s=10.0) as server:
        b = backend(server)
        layers = EndpointLayers(
            EndpointLimits(rpm=100, tpm=6000, window_s=10.0, max_concurrency=200)
        )
        gateway = Gateway({"api": b}, RetryPolicy(attempts=1), layers={"api": layers})
        emit = Recorder()
        try:
            outcomes = await run_requests(gateway, 120, emit)
        finally:
            await b.aclose()
    timeline = server.timeline()
    assert server.budget_rejections == 0 and server.count(429) == 0, timeline
    assert outcomes.count("ok") == 120, [f["error"] for f in emit.of(ModelFailed)]
    assert len(server.requests) == 120
    # a bucket of 100 refilled at 10/s admits at most 100 + 10 in any one-second window
    assert server.max_in_window(1.0) <= 110


async def test_token_limit_is_corrected_with_the_reported_usage():
    # each request is charged prompt + 200 max tokens before the call, then the
    # bucket is corrected to what the server reported (~50 tokens)
    with ChatServer() as server:
        b = backend(server)
        layers = EndpointLayers(EndpointLimits(tpm=100_000, window_s=3600.0))
        gateway = Gateway({"api": b}, RetryPolicy(attempts=1), layers={"api": layers})
        emit = Recorder()
        try:
            for i in range(5):
                await gateway.complete("api", request(i, max_tokens=200), emit)
        finally:
            await b.aclose()
    used = sum(e["input_tokens"] + e["output_tokens"] for e in emit.of(ModelResponded))
    assert layers.tpm is not None
    level = layers.tpm.bucket.level
    assert used < 5 * 200
    # what is left in the bucket is the reported usage (less what leaked: ~28 tokens/s)
    assert used - 100 <= level <= used


async def test_limits_set_too_high_still_complete_and_back_off():
    with ChatServer(rpm=8, window_s=0.5, retry_after_s=0.05) as server:
        b = backend(server)
        layers = EndpointLayers(
            EndpointLimits(rpm=1000, window_s=0.5, max_concurrency=32, start_concurrency=32)
        )
        gateway = Gateway(
            {"api": b},
            RetryPolicy(attempts=30, backoff_s=0.02, max_backoff_s=0.2),
            layers={"api": layers},
        )
        emit = Recorder()
        try:
            outcomes = await run_requests(gateway, 40, emit)
        finally:
            await b.aclose()
    assert outcomes.count("ok") == 40
    assert server.budget_rejections > 0  # the server pushed back ...
    assert layers.concurrency.halvings >= 1  # ... and the cap came down
    assert server.served == 40


def test_adaptive_concurrency_grows_and_halves():
    cap = AdaptiveConcurrency(start=4, maximum=10)

    async def cycle(outcome: str) -> None:
        gen = await cap.acquire()
        cap.release(gen, outcome)

    async def scenario() -> None:
        for _ in range(4):
            await cycle("ok")
        assert cap.limit == 5
        gens = [await cap.acquire() for _ in range(3)]
        for g in gens:  # three 429s of one generation halve once
            cap.release(g, "throttled")
        assert cap.limit == 2 and cap.halvings == 1

    anyio.run(scenario)


async def test_response_cache_serves_identical_requests_without_calling(server, tmp_path):
    b = backend(server)
    cache = ResponseCache(tmp_path / "c.sqlite3")
    gateway = Gateway({"api": b}, RetryPolicy(), cache=cache, cache_ids={"api": b.cache_identity})
    emit = Recorder()
    try:
        first = await gateway.complete("api", request(1), emit)
        second = await gateway.complete("api", request(1), emit)
        await gateway.complete("api", request(2), emit)
    finally:
        await b.aclose()
        cache.close()
    assert (first.text, first.input_tokens, first.output_tokens) == (
        second.text,
        second.input_tokens,
        second.output_tokens,
    )
    assert len(server.requests) == 2
    assert [e.get("cached", False) for e in emit.of(ModelResponded)] == [False, True, False]
    assert FAKE_KEY.encode() not in await anyio.Path(tmp_path / "c.sqlite3").read_bytes()


async def test_identical_requests_in_flight_at_once_call_the_server_once(server, tmp_path):
    server.faults.append("slow")
    server.slow_s = 0.3
    b = backend(server)
    cache = ResponseCache(tmp_path / "c.sqlite3")
    gateway = Gateway({"api": b}, RetryPolicy(), cache=cache, cache_ids={"api": b.cache_identity})
    emit = Recorder()
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(gateway.complete, "api", request(7), emit)
    finally:
        await b.aclose()
        cache.close()
    assert len(server.requests) == 1
    assert sorted(e.get("cached", False) for e in emit.of(ModelResponded)) == [False] + [True] * 4


# --- whole runs ------------------------------------------------------------------------

SCENARIO = """
name = "api"
seeds = [1235]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[retry]
attempts = 8
backoff_s = 0.01
max_backoff_s = 0.1
timeout_s = 2
{models}
"""


def models_block(base_url: str, **extra) -> str:
    lines = []
    for role in ("user", "agent", "judge"):
        lines += [
            f"[models.{role}]",
            'backend = "openai"',
            f'model = "gpt-{role}"',
            f'base_url = "{base_url}"',
            f'api_key_env = "{KEY_ENV}"',
            "input_price = 2.5",
            "output_price = 10.0",
        ]
        lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines)


async def test_second_identical_run_hits_the_cache_and_calls_the_server_zero_times(
    write_scenario, tmp_path, key, server
):
    server.faults.extend(["429", "500", "drop"])
    path = write_scenario(SCENARIO.format(models=models_block(server.base_url, rpm=600)))
    scenario = load_scenario(path)
    cache = tmp_path / "cache" / "responses.sqlite3"
    first = await execute(
        prepare(scenario, tmp_path / "run1", RunOptions(progress="off", cache_path=str(cache)))
    )
    assert first.status == "completed" and first.model_failures == 0
    calls = len(server.requests)
    # identical requests within the run (a user's text for one document, asked
    # by both methods' episodes) are answered from the cache already; the three
    # injected faults cost one extra request each
    assert calls == first.model_calls - first.cached_calls + 3
    assert first.cached_calls < first.model_calls and first.cost_usd > 0
    priced = {(u["role"], u["purpose"]) for u in first.usage if u["cost_usd"] > 0}
    assert priced == {(u["role"], u["purpose"]) for u in first.usage if u["calls"] > u["cached"]}
    assert {role for role, _ in priced} >= {"user", "agent"}

    second = await execute(
        prepare(scenario, tmp_path / "run2", RunOptions(progress="off", cache_path=str(cache)))
    )
    assert len(server.requests) == calls  # zero calls to the server
    assert second.model_calls == first.model_calls == second.cached_calls
    assert second.cost_usd == 0
    responded = [
        e for e in read_events(tmp_path / "run2" / "events.jsonl") if isinstance(e, ModelResponded)
    ]
    assert responded and all(e.cached for e in responded)
    assert (tmp_path / "run1" / "results.csv").read_text() == (
        tmp_path / "run2" / "results.csv"
    ).read_text()

    third = await execute(
        prepare(
            scenario,
            tmp_path / "run3",
            RunOptions(progress="off", cache_path=str(cache), use_cache=False),
        )
    )
    assert third.cached_calls == 0 and len(server.requests) == calls + third.model_calls


def test_no_api_key_appears_in_any_output(
    write_scenario, tmp_path, key, server, capsys, monkeypatch
):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    # a server that echoes the key in its errors, and failures that exhaust the retries
    server.faults.extend(["401", "429", "500", "drop"] + ["500"] * 8)
    path = write_scenario(SCENARIO.format(models=models_block(server.base_url)))
    code = main(["run", str(path), "--out", str(tmp_path / "run"), "--progress", "log"])
    assert code == 2  # the 401 (a wrong key) stops the run at once
    assert any(r["authorization"] == f"Bearer {FAKE_KEY}" for r in server.requests)
    out = capsys.readouterr()
    assert FAKE_KEY not in out.out and FAKE_KEY not in out.err
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert "model_failed" in events  # the echoed-key error was recorded ...
    for file in list((tmp_path / "run").rglob("*")) + list((tmp_path / "cache").rglob("*")):
        if file.is_file():
            assert FAKE_KEY.encode() not in file.read_bytes(), file  # ... scrubbed
            assert FAKE_KEY[8:].encode() not in file.read_bytes(), file


def test_run_without_the_key_exits_2_and_says_how_to_fix_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = ["run", str(SCENARIOS / "paper.toml"), "--set", "corpus=bundled"]
    code = main([*run, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "OPENAI_API_KEY" in err and "base_url" in err and "backend=local" in err
    assert not (tmp_path / "run").exists()


def test_paper_scenario_is_the_papers_grid(monkeypatch):
    scenario = load_scenario(SCENARIOS / "paper.toml", ["corpus=bundled"])
    assert scenario.seeds == [1235, 9328, 235, 6936, 2045]
    assert scenario.demonstrations_per_user == 5
    assert set(scenario.tasks) == {"summarization", "email_writing"}
    assert all(t.framework == "plume" for t in scenario.tasks.values())
    methods = {scenario.method_of(label) for label in scenario.methods}
    assert methods == {"no_learning", "oracle", "cipher1", "cipherN", "icl", "prose", "icl+prose"}
    variants = {s.variant for s in scenario.methods.values() if (s.method or "") == "prose"}
    assert variants >= {"full", "nv", "sc", "1sc", "1nc", "1sc_ap_nv"}
    assert scenario.models.user.model == scenario.models.judge.model == "gpt-4o"
    assert scenario.models.user.backend == scenario.models.judge.backend == "openai"
    assert scenario.models.agent.model  # set in one place


def test_no_cache_flag_neither_reads_nor_writes_the_cache(
    write_scenario, tmp_path, key, server, monkeypatch
):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    path = write_scenario(SCENARIO.format(models=models_block(server.base_url)))
    code = main(
        ["run", str(path), "--out", str(tmp_path / "run"), "--progress", "off", "--no-cache"]
    )
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cached_calls"] == 0
    assert len(server.requests) == summary["model_calls"]  # identical requests asked again
    assert not (tmp_path / "cache" / "responses.sqlite3").exists()


def test_an_openai_model_needs_a_model_name(write_scenario):
    from prose_sim.errors import UsageError

    path = write_scenario(SCENARIO.format(models='[models.agent]\nbackend = "openai"'))
    with pytest.raises(UsageError, match=r"models\.agent\.model"):
        load_scenario(path)
