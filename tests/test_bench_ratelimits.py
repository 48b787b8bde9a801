"""``bench ratelimits``: its cases on tiny settings, and its measured interval.

Real runs against the loopback server, so nothing here asserts durations or
throughput shares: only the structure of a row and the counts that do not
depend on timing.
"""

from __future__ import annotations

import pytest

from benchmarks import ratelimits
from benchmarks.common import SuiteResult

TINY = {
    "seeds": 1,
    "methods": {"no_learning": {}},
    "demonstrations": 1,
    "tasks": {"summarization": {"personas": ["cnn_dailymail", "imdb"]}},
    "latency_s": 0.02,
    "retry_after_s": 0.05,
    "retry": {"attempts": 30, "backoff_s": 0.01, "max_backoff_s": 0.1, "timeout_s": 30.0},
}

COLUMNS = {
    "case",
    "binds",
    "budget_rpm",
    "budget_tpm",
    "scenario_rpm",
    "scenario_tpm",
    "requests",
    "tokens",
    "measured_s",
    "achieved_rpm_share",
    "achieved_tpm_share",
    "http_429",
    "retries",
    "model_failures",
    "lost_requests",
    "instances_ok",
    "calls",
    "wall_s",
}


def _check_row(row: dict) -> None:
    assert set(row) >= COLUMNS
    for value in row.values():  # plain values only
        assert isinstance(value, (str, int, float, bool)), row
    done, total = (int(x) for x in row["instances_ok"].split("/"))
    assert 0 <= done <= total and total > 0
    # every attempt is one HTTP request; every failed attempt here is a 429
    assert row["http_requests"] == row["calls"] + row["retries"]
    assert row["http_429"] == row["retries"]
    assert 0 <= row["requests"] <= row["calls"]


def test_matched_limits_with_a_generous_budget_lose_nothing():
    row = ratelimits.measure("matched", 6000, 10_000_000, window_s=1.0, **TINY)
    _check_row(row)
    assert row["case"] == "matched"
    assert (row["budget_rpm"], row["scenario_rpm"]) == (6000, 6000)
    assert (row["budget_tpm"], row["scenario_tpm"]) == (10_000_000, 10_000_000)
    assert row["http_429"] == 0 and row["model_failures"] == 0 and row["lost_requests"] == 0
    assert row["instances_ok"] == "2/2"


def test_limits_twice_too_high_lose_no_request():
    # the scenario claims 2x the server's 8 requests a second; 429s are all but
    # certain (not asserted: how many depends on timing), and none may cost a request
    row = ratelimits.measure("2x", 8, None, window_s=1.0, claim=2.0, **{**TINY, "seeds": 2})
    _check_row(row)
    assert (row["budget_rpm"], row["scenario_rpm"], row["scenario_tpm"]) == (8, 16, "off")
    assert row["model_failures"] == 0 and row["lost_requests"] == 0
    assert row["instances_ok"] == "4/4" and row["completion_share"] == 1.0
    assert row["episodes_failed"] == 0


def test_limits_off_reference_has_no_budget_and_measures_all_traffic():
    row = ratelimits.measure(
        "off", 6000, None, window_s=1.0, claim=None, server_limits=False, **TINY
    )
    _check_row(row)
    assert row["budget_rpm"] == row["scenario_rpm"] == row["scenario_tpm"] == "off"
    assert row["achieved_rpm_share"] == ""
    assert row["requests"] == row["calls"]  # first to last request: all of them
    assert row["http_429"] == 0


def test_measured_interval_skips_start_up_and_the_unsaturated_tail():
    # requests every 0.1 s for 10 s; each asked 0.5 s before it arrived until
    # t = 8 (waiting in the gateway), then at once (the run's demand ran dry)
    arrivals = [(round(i * 0.1, 3), 200, 10) for i in range(101)]
    asked = sorted(t - 0.5 if t <= 8.0 else t for t, _, _ in arrivals)
    start, end, steady = ratelimits._measured_interval(arrivals, asked, [], window_s=2.0)
    assert steady and start == 2.0
    assert 7.5 <= end <= 8.0
    # a run too short for a steady stretch: first to last request
    start, end, steady = ratelimits._measured_interval(arrivals[:20], asked[:20], [], window_s=2.0)
    assert (start, end, steady) == (0.0, 1.9, False)
    assert ratelimits._measured_interval([], [], [], 2.0) == (0.0, 0.0, False)


def test_min_headroom_replays_the_server_bucket():
    # a budget of 10 per 1 s; 9 at once, then one every 0.1 s: the bucket sits at 1
    served = [(0.0, 5)] * 9 + [(0.1 * i, 5) for i in range(1, 30)]
    assert ratelimits._min_headroom(served, 10, None, 1.0) == pytest.approx(0.1, abs=1e-6)
    assert ratelimits._min_headroom(served, None, 1000, 1.0) == pytest.approx(
        1 - 45 / 1000, abs=1e-3
    )


def test_suite_result_shape(monkeypatch):
    calls = []

    def fake_measure(case, rpm, tpm, seconds=30.0, **kw):
        calls.append((case, kw.get("claim", 1.0)))
        off = kw.get("server_limits") is False
        return {
            "case": case,
            "binds": "" if off else ("tpm" if "tpm" in case else "rpm"),
            "budget_rpm": rpm,
            "budget_tpm": tpm,
            "scenario_rpm": rpm,
            "scenario_tpm": tpm,
            "seeds": 2,
            "requests": 10,
            "tokens": 100,
            "measured_s": 1.0,
            "steady": not off,
            "requests_per_s": 100.0 if off else 30.0,
            "achieved_rpm_share": "" if off else 0.99,
            "achieved_tpm_share": "" if off else 0.99,
            "first_last_rpm_share": "" if off else 1.1,
            "server_min_headroom": "" if off else 0.1,
            "http_429": 3 if "2x" in case else 0,
            "retries": 3 if "2x" in case else 0,
            "model_failures": 0,
            "lost_requests": 0,
            "instances_ok": "4/4",
            "calls": 10,
            "wall_s": 1.0,
        }

    monkeypatch.setattr(ratelimits, "measure", fake_measure)
    monkeypatch.setattr(
        ratelimits,
        "calibrate",
        lambda *a, **k: ratelimits.Profile(episodes=1, calls=10, tokens=1000),
    )
    result = ratelimits.run(quick=True)
    assert isinstance(result, SuiteResult) and result.suite == "ratelimits"
    assert result.command == "python -m benchmarks ratelimits --quick"
    assert [c.name for c in result.checks][:3] == [
        "throughput share of budget (matched limits)",
        "429s with matched limits",
        "lost requests with limits 2x too high",
    ]
    assert all(c.met for c in result.checks)
    assert len(result.rows) == 4 and all(set(result.columns) <= set(r) for r in result.rows)
    assert ("limits 2x too high", 2.0) in calls
    assert "NOT FOR THE RECORD" in result.markdown()
