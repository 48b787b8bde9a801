"""Shards split budgets: under ``--shard K/N`` each endpoint's limits are divided by N.

The rules on ``EndpointLimits`` and on built models, then N shards at once (subprocesses)
against one loopback server that enforces the budget itself (``RPM`` per ``WINDOW_S``). No timing is asserted: the
shards' 429s are counted (none), and the share of the budget they used together is
measured from the server's arrival times and printed (``-s``), not asserted, since on a
loaded machine a shard may be starved of CPU and fall short for reasons that are not the
limiter's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from prose_sim.config import ShardingSettings
from prose_sim.models.limits import EndpointLimits, shard_divisor, shard_share
from prose_sim.runtime.backends import build_models
from prose_sim.scenario import scenario_from_dict
from prose_sim.scenario.loading import dump_scenario
from prose_sim.testing.chat_server import ChatServer

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "PROSE_SIM_SHARD_LIMITS_KEY"


def test_each_shard_takes_its_share_of_rpm_tpm_and_a_set_concurrency_cap():
    whole = EndpointLimits(rpm=300, tpm=90_000, max_concurrency=16, start_concurrency=16)
    share = shard_share(whole, 3, cap_set=True)
    assert (share.rpm, share.tpm, share.max_concurrency) == (100, 30_000, 5)
    assert share.start_concurrency == 5 and share.divided_by == 3
    assert shard_share(whole, 1, cap_set=True) == whole


def test_a_budget_below_one_request_per_shard_keeps_its_rate_and_nothing_is_zero():
    share = shard_share(EndpointLimits(rpm=2, tpm=5, max_concurrency=2), 3, cap_set=True)
    assert share.rpm == pytest.approx(2 / 3) and share.tpm == pytest.approx(5 / 3)
    assert share.max_concurrency == 1  # rounded down, never below 1


def test_the_default_concurrency_cap_is_the_runs_own_and_is_not_divided():
    share = shard_share(EndpointLimits(rpm=60, max_concurrency=100), 4, cap_set=False)
    assert share.max_concurrency == 100 and share.rpm == 15


def test_split_limits_false_lets_every_shard_take_the_whole_limits():
    assert shard_divisor((2, 4), None) == 4
    assert shard_divisor((2, 4), ShardingSettings(split_limits=True)) == 4
    assert shard_divisor((2, 4), ShardingSettings(split_limits=False)) == 1
    assert shard_divisor(None, None) == 1


# the account's budget: 240 requests per 4 s window (60 a second). A window of seconds, not
# one: a shard's bucket sends at most 90% of its share at once, and the 10% left is what
# absorbs a shard process stalled by a busy machine (up to 0.4 s here) whose held-back
# requests then reach the server together
RPM, WINDOW_S = 240, 4.0


def scenario(base_url: str, seeds: int, **extra: object) -> dict:
    """Every role on the loopback endpoint, whose budget is ``RPM`` per ``WINDOW_S``."""
    models = {
        role: {
            "backend": "openai",
            "model": f"m-{role}",
            "base_url": base_url,
            "api_key_env": KEY_ENV,
            "rpm": RPM,
            "tpm": 10_000_000,
            "rate_window_s": WINDOW_S,
            "max_concurrency": 8,
        }
        for role in ("user", "agent", "judge")
    }
    return {
        "name": "shard-limits",
        "seeds": list(range(1, seeds + 1)),
        "demonstrations_per_user": 2,
        "tasks": {"summarization": {"personas": ["cnn_dailymail", "imdb"]}},
        "methods": {"no_learning": {}},
        "metrics": {"bertscore": ""},
        "retry": {"attempts": 10, "backoff_s": 0.05, "max_backoff_s": 1.0, "timeout_s": 30.0},
        "models": models,
        **extra,
    }


def test_built_models_of_a_shard_hold_its_share(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    raw = scenario("http://127.0.0.1:9/v1", 1)
    built = build_models(scenario_from_dict(raw, "t"), 10, shard=(1, 3))
    (layers,) = {id(v): v for v in built.layers.values()}.values()
    assert (layers.limits.rpm, layers.limits.max_concurrency) == (RPM / 3, 2)
    assert layers.stats()["divided_by"] == 3
    raw = scenario("http://127.0.0.1:9/v1", 1, sharding={"split_limits": False})
    built = build_models(scenario_from_dict(raw, "t"), 10, shard=(1, 3))
    assert {v.limits.rpm for v in built.layers.values()} == {RPM}


def served_share(server: ChatServer, shards: int) -> float:
    """Requests served while every shard was sending (from a window after the last shard's
    first request, past the start-up burst, to the first shard's last one), over the
    budget for that time."""
    by_shard: dict[str, list[float]] = {}
    for r in server.requests:
        by_shard.setdefault(r["authorization"], []).append(r["t"])
    assert len(by_shard) == shards
    start = max(min(times) for times in by_shard.values()) + WINDOW_S
    end = min(max(times) for times in by_shard.values())
    served = sum(start <= r["t"] <= end and r["status"] == 200 for r in server.requests)
    return served / (RPM / WINDOW_S * (end - start)) if end > start else float("nan")


@pytest.mark.anyio
@pytest.mark.parametrize("shards", [3])
async def test_shards_at_once_against_one_budget_get_no_429(tmp_path, shards):
    with ChatServer(rpm=RPM, window_s=WINDOW_S, latency_s=0.01, retry_after_s=0.2) as server:
        # about 7 calls an instance: ~670 calls; 216 at once, then ~7.5 s at 60 a second
        toml = tmp_path / "s.toml"
        toml.write_text(dump_scenario(scenario_from_dict(scenario(server.base_url, 24), "t")))
        results: dict[int, subprocess.CompletedProcess] = {}

        async def shard(k: int) -> None:
            env = {**os.environ, KEY_ENV: f"sk-shard-{k}", "PYTHONPATH": str(ROOT)}
            command = [sys.executable, "-m", "prose_sim", "run", str(toml)]
            command += ["--out", str(tmp_path / f"s{k}"), "--shard", f"{k}/{shards}"]
            command += ["--no-cache", "--progress", "log", "--no-report"]
            results[k] = await anyio.run_process(
                command,
                env=env,
                check=False,
            )

        async with anyio.create_task_group() as tg:
            for k in range(1, shards + 1):
                tg.start_soon(shard, k)
    for k, done in results.items():
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        err = done.stderr.decode()
        first = next(line for line in err.splitlines() if "progress" in line)
        assert f"shard {k}/{shards} takes 1/{shards} of each endpoint's limits" in first
        summary = json.loads((tmp_path / f"s{k}" / "summary.json").read_text())
        assert summary["shard"] == f"{k}/{shards}"
        (endpoint,) = summary["endpoints"]
        assert endpoint["rpm"] == pytest.approx(RPM / shards)
        assert endpoint["divided_by"] == shards
        assert endpoint["max_concurrency"] == 8 // shards
        assert endpoint["throttled"] == 0 and summary["failed_attempts"] == 0
    # the server: every request within its budget, every one served
    assert server.budget_rejections == 0 and server.count(429) == 0
    assert server.served == sum(
        json.loads((tmp_path / f"s{k}" / "summary.json").read_text())["model_calls"]
        for k in results
    )
    share = served_share(server, shards)
    print(f"{shards} shards used {share:.1%} of the budget together")  # the note's figure
