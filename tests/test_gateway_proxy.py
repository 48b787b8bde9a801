"""The shared-gateway recipe (examples/gateway/): two shards through one LiteLLM proxy, with
Redis for its counters and cache, in front of the loopback rate-limiting server. The proxy
holds the budget for both shards (the upstream never sees more than it), and a request the
second shard asks that the first already asked is answered from the proxy's cache.

LiteLLM's proxy is not a dependency of prose_sim: `.ci/run` installs it into a virtual
environment of its own and names its `litellm` in PROSE_SIM_LITELLM (else `litellm` on the
PATH is used); Redis is Debian's `redis-server`. Without either the test is skipped, saying so.
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT

from prose_sim.cli import main
from prose_sim.events import ModelFailed, ModelRequested, ModelResponded
from prose_sim.runfolder import RunFolder
from prose_sim.testing.chat_server import ChatServer

EXAMPLE = ROOT / "examples" / "gateway"
PROXY_RPM = 24  # the proxy's budget per calendar minute: less than the two shards ask
NO_DISK = ["--save", "", "--appendonly", "no"]  # redis-server keeps nothing on disk
KEY = "sk-proxy-test-0123456789abcdef0123456789abcdef"

# the example scenario, made small: one user, two methods whose first instance asks the
# same requests (no preferences learned yet), one shard each
SMALL = [
    'tasks={summarization={personas=["imdb"]}}',
    "methods={no_learning={}, cipher1={}}",
    "seeds=[1]",
    "demonstrations_per_user=2",
    'metrics.bertscore=""',
    # a 429 of the proxy (its minute's budget spent) is waited out: up to a minute
    "retry.attempts=14",
    "retry.backoff_s=0.5",
    "retry.max_backoff_s=15",
    "retry.breaker_calls=0",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(ready, what: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not come up in {timeout_s} s")


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def proxy_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """Redis, the upstream (a rate-limited loopback server) and LiteLLM's proxy before it."""
    litellm = os.environ.get("PROSE_SIM_LITELLM") or shutil.which("litellm")
    redis = shutil.which("redis-server")
    if not litellm or not Path(litellm).exists():
        pytest.skip("LiteLLM's proxy is not installed (.ci/run installs it: PROSE_SIM_LITELLM)")
    if redis is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path_factory.mktemp("gateway")
    redis_port, proxy_port = free_port(), free_port()
    started: list[subprocess.Popen] = []
    # twice the proxy's per-minute budget over any sliding minute: LiteLLM counts calendar
    # minutes, so across a minute's boundary it may pass up to twice its rpm in 60 s
    upstream = ChatServer(rpm=2 * PROXY_RPM, window_s=60).start()
    try:
        started.append(
            subprocess.Popen(
                [redis, "--port", str(redis_port), "--bind", "127.0.0.1", *NO_DISK],
                stdout=subprocess.DEVNULL,
            )
        )
        wait_until(lambda: redis_answers(redis_port), "redis-server", 30, started[-1])
        config = (EXAMPLE / "litellm.yaml").read_text(encoding="utf-8")
        assert "rpm: 500" in config
        (folder / "litellm.yaml").write_text(
            config.replace("rpm: 500", f"rpm: {PROXY_RPM}"), encoding="utf-8"
        )
        env = {
            **os.environ,
            "LITELLM_MASTER_KEY": KEY,
            "UPSTREAM_BASE_URL": upstream.base_url,
            "UPSTREAM_API_KEY": "sk-upstream",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_port),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no price list from the net
        }
        command = [litellm, "--config", str(folder / "litellm.yaml")]
        with open(folder / "proxy.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [*command, "--host", "127.0.0.1", "--port", str(proxy_port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                )
            )
        url = f"http://127.0.0.1:{proxy_port}"
        wait_until(lambda: proxy_answers(url), "LiteLLM's proxy", 240, started[-1])
        yield url, upstream
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        upstream.stop()


def run_shard(k: int, out: Path, proxy_url: str) -> int:
    overrides = [
        *SMALL,
        *(f"models.{role}.base_url={proxy_url}/v1" for role in ("user", "agent", "judge")),
    ]
    args = [a for o in overrides for a in ("--set", o)]
    scenario = str(EXAMPLE / "through_proxy.toml")
    quiet = ["--progress", "off", "--no-report", "--no-cache"]
    return main(["run", scenario, "--shard", f"{k}/2", "--out", str(out), *args, *quiet])


def test_two_shards_through_one_proxy_share_its_budget_and_its_cache(
    gateway, tmp_path, monkeypatch
):
    proxy_url, upstream = gateway
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for k, out in enumerate(shards, 1):  # one after the other: the second finds the first's
        assert run_shard(k, out, proxy_url) == 0
    events = [e for out in shards for e in RunFolder(out).events()]
    answered = [e for e in events if isinstance(e, ModelResponded)]
    asked = {e.request_hash for e in events if isinstance(e, ModelRequested)}
    assert not [e for e in events if isinstance(e, ModelFailed)]
    assert len(answered) > PROXY_RPM  # the shards asked more than the proxy's minute allows
    # every distinct request reached the upstream once: the second shard's requests that the
    # first had asked were answered from the proxy's cache
    assert upstream.served == len(asked) < len(answered)
    served_by_shards = upstream.served
    # the proxy's limit itself, whatever the minute the shards' calls fell in: more requests
    # at once, until the proxy refuses one
    refused = burst_until_refused(proxy_url)
    assert refused is not None, f"the proxy sent {3 * PROXY_RPM} requests upstream in a row"
    assert "rate" in refused.lower()
    # the upstream never refused (it never saw more than its budget), and no calendar minute
    # carried more than the proxy's budget
    assert upstream.budget_rejections == 0 and upstream.count(429) == 0
    per_minute = calendar_minutes(upstream)
    assert max(per_minute.values()) <= PROXY_RPM
    print(
        f"gateway: {len(answered)} answers to the shards, {served_by_shards} requests upstream, "
        f"{sum(e.attempts > 1 for e in answered)} answers after a 429 of the proxy; then "
        f"{upstream.served - served_by_shards} more before the proxy refused; upstream per "
        f"calendar minute {sorted(per_minute.values())} (proxy rpm {PROXY_RPM})"
    )


def calendar_minutes(upstream: ChatServer) -> collections.Counter[int]:
    """The upstream's requests by the calendar minute they arrived in. A request that arrived in
    a minute's first second is left out: the proxy counts a request before it sends it, so
    such a request may be the previous minute's by the proxy's count."""
    wall = time.time() - time.monotonic()  # the upstream's clock (monotonic) to the wall's
    arrivals = (r["t"] + wall for r in upstream.requests)
    return collections.Counter(int(at // 60) for at in arrivals if at % 60 >= 1.0)


def burst_until_refused(proxy_url: str) -> str | None:
    """Distinct requests to the proxy one after another until it answers 429 (its body), at
    most three minutes' budget of them (None: it never refused)."""
    with httpx.Client(base_url=f"{proxy_url}/v1", timeout=60) as client:
        for i in range(3 * PROXY_RPM):
            answer = client.post(
                "/chat/completions",
                headers={"Authorization": f"Bearer {KEY}"},
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": f"burst {i}"}]},
            )
            if answer.status_code == 429:
                return answer.text
            assert answer.status_code == 200, answer.text[:300]
    return None
