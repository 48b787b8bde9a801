"""``bench ratelimits``: how much of an endpoint's budget the gateway's limits use.

Real runs (every role on the ``openai`` backend, BERTScore off, the response
cache off) against the loopback chat-completions server
(:class:`~prose_sim.testing.chat_server.ChatServer`), which enforces its own
requests and tokens per window as a token bucket (429 past it) and answers
after a simulated latency, so that concurrency matters. Cases, one run each:

- **matched**: the scenario's ``rpm`` / ``tpm`` (per ``rate_window_s``) are the
  server's budget; once with the request budget binding, once with the token
  budget binding. Target: >= 95% of the binding budget used over the measured
  interval, and no 429;
- **2x too high**: the scenario claims twice the server's budget; the gateway's
  retries (honouring ``Retry-After``) and adaptive concurrency cap must lose no
  request. 429s are expected;
- **limits off**: the matched run's scenario with no limits on either side: the
  reference showing the matched runs are limit-bound, not latency-bound.

Each limited run is sized (from a calibration run counting calls and tokens per
episode) so that its demand exceeds the budget for the whole measured time.

The measured interval, from the server's arrival times and the run's events:
it starts one window after the first request (skipping start-up: the
gateway's bucket starts with 90% of a window's budget to spend at once, and the
adaptive concurrency cap ramps up from 16), and ends at the last request the
server received while another request, asked (``model_requested``) at least
``WAITING_S`` earlier, had not reached it yet: it was waiting in the gateway.
After that the run's own demand, not the limiter, sets the pace (its last
episodes finishing). The shares are served (200) requests and their tokens in
that interval over the budget's rate times its length. The server's bucket,
replayed from the arrivals, gives the part of the budget never used
(``server_min_headroom``).
"""

from __future__ import annotations

import bisect
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

import anyio
import msgspec

from benchmarks.common import Check, SuiteResult
from prose_sim.eventlog import read_events
from prose_sim.events import ModelFailed, ModelRequested, ModelResponded
from prose_sim.testing.chat_server import ChatServer

if TYPE_CHECKING:
    from prose_sim.runtime.runner import RunOutcome

KEY_ENV = "PROSE_SIM_BENCH_RATELIMITS_KEY"
DUMMY_KEY = "sk-bench-ratelimits-dummy"
WINDOW_S = 10.0
LATENCY_S = 0.3
RETRY_AFTER_S = 1.0
# a table of a scenario, as TOML would give it (scenario_from_dict checks it)
Table = dict[str, object]
METHODS: dict[str, Table] = {"no_learning": {}, "prose_1sc": {"method": "prose", "variant": "1sc"}}
DEMONSTRATIONS = 2
# the scenario's [retry]: generous enough that throttled requests are never lost
RETRY: Table = {"attempts": 10, "backoff_s": 0.5, "max_backoff_s": 8.0, "timeout_s": 30.0}
# budgets per window: requests / tokens, for each binding budget (the other one loose)
BUDGETS = {
    "rpm": (300, 400_000),  # 30 requests/s bind; ~15k of the 40k tokens/s used
    "tpm": (600, 150_000),  # 15k tokens/s bind (~26-29 requests/s of the 60 allowed)
}


class CaseRow(TypedDict):
    """One case's figures (a row of the suite's table); "off" / "" where a budget is off."""

    case: str
    budget_rpm: int | str
    budget_tpm: int | str
    scenario_rpm: int | str
    scenario_tpm: int | str
    window_s: float
    binds: str
    seeds: int
    episodes: int
    calls: int
    requests: int
    tokens: int
    measured_s: float
    steady: bool
    requests_per_s: float
    tokens_per_s: float
    achieved_rpm_share: float | str  # a float until run() writes it as a percentage
    achieved_tpm_share: float | str
    first_last_s: float
    first_last_rpm_share: float | str
    server_min_headroom: float | str
    http_requests: int
    http_429: int
    retries: int
    model_failures: int
    lost_requests: int
    instances_ok: str  # "finished/all"
    completion_share: float
    wall_s: float
    episodes_failed: int


ShareKey = Literal[
    "achieved_rpm_share", "achieved_tpm_share", "first_last_rpm_share", "server_min_headroom"
]
SHARE_KEYS: tuple[ShareKey, ...] = (
    "achieved_rpm_share",
    "achieved_tpm_share",
    "first_last_rpm_share",
    "server_min_headroom",
)


class Profile(msgspec.Struct, kw_only=True):
    """Calls and tokens of one seed's episodes (all tasks' users x methods)."""

    episodes: int
    calls: int
    tokens: int

    @property
    def tokens_per_call(self) -> float:
        return self.tokens / max(1, self.calls)


def scenario_raw(
    base_url: str,
    seeds: int,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    window_s: float = WINDOW_S,
    methods: dict[str, Table] | None = None,
    demonstrations: int = DEMONSTRATIONS,
    retry: Table | None = None,
    tasks: dict[str, Table] | None = None,
) -> Table:
    """A scenario with every role on the loopback endpoint, limited (or not) as given."""
    models: dict[str, Table] = {}
    for role in ("user", "agent", "judge"):
        spec: dict[str, object] = {
            "backend": "openai",
            "model": f"gpt-bench-{role}",
            "base_url": base_url,
            "api_key_env": KEY_ENV,
            "rate_window_s": window_s,
        }
        if rpm:
            spec["rpm"] = int(rpm)
        if tpm:
            spec["tpm"] = int(tpm)
        models[role] = spec
    return {
        "name": "bench-ratelimits",
        "seeds": list(range(1, seeds + 1)),
        "demonstrations_per_user": demonstrations,
        "tasks": tasks if tasks is not None else {"summarization": {}, "email_writing": {}},
        "methods": methods if methods is not None else METHODS,
        "metrics": {"bertscore": ""},
        "retry": retry if retry is not None else RETRY,
        "models": models,
    }


def _run_scenario(raw: Table, run_dir: Path) -> RunOutcome:
    from prose_sim.config import RunOptions
    from prose_sim.runtime.prepare import prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import scenario_from_dict

    os.environ.setdefault(KEY_ENV, DUMMY_KEY)  # in-process only: the loopback server takes any key
    scenario = scenario_from_dict(raw, "bench ratelimits")

    async def go() -> RunOutcome:
        return await execute(
            prepare(scenario, run_dir, RunOptions(progress="off", use_cache=False))
        )

    return anyio.run(go)


def calibrate(
    methods: dict[str, Table] | None = None,
    demonstrations: int = DEMONSTRATIONS,
    tasks: dict[str, Table] | None = None,
) -> Profile:
    """One seed, no latency, no limits: calls and tokens per seed of the scenario."""
    with ChatServer() as server, tempfile.TemporaryDirectory() as tmp:
        raw = scenario_raw(
            server.base_url, 1, methods=methods, demonstrations=demonstrations, tasks=tasks
        )
        outcome = _run_scenario(raw, Path(tmp) / "run")
    return Profile(
        episodes=outcome.episodes,
        calls=outcome.model_calls,
        tokens=outcome.input_tokens + outcome.output_tokens,
    )


def binding_rate(
    budget_rpm: int | None, budget_tpm: int | None, window_s: float, tokens_per_call: float
) -> float:
    """Requests per second the budget allows for calls of this size (inf: no budget)."""
    rates = []
    if budget_rpm:
        rates.append(budget_rpm / window_s)
    if budget_tpm:
        rates.append(budget_tpm / window_s / tokens_per_call)
    return min(rates) if rates else math.inf


def seeds_for(seconds: float, rate: float, window_s: float, profile: Profile) -> int:
    """Seeds whose calls keep the budget busy for the start-up window, then ``seconds``, then a margin."""
    calls = 0.9 * rate * window_s + rate * (window_s + seconds + 3.0)
    return max(1, math.ceil(calls / profile.calls))


def measure(
    case: str,
    budget_rpm: int | None,
    budget_tpm: int | None,
    seconds: float = 30.0,
    *,
    claim: float | None = 1.0,
    window_s: float = WINDOW_S,
    latency_s: float = LATENCY_S,
    retry_after_s: float = RETRY_AFTER_S,
    seeds: int | None = None,
    profile: Profile | None = None,
    methods: dict[str, Table] | None = None,
    demonstrations: int = DEMONSTRATIONS,
    retry: Table | None = None,
    tasks: dict[str, Table] | None = None,
    server_limits: bool = True,
) -> CaseRow:
    """One case: a real run against a ChatServer with budget ``budget_rpm`` / ``budget_tpm``
    per ``window_s``, the scenario claiming ``claim`` times that budget (None: no limits).

    ``seeds`` fixes the run's size; otherwise it is sized from ``profile`` (a
    calibration run when not given) to keep the budget busy for ``seconds``.
    ``server_limits=False``: the server enforces no budget (the limits-off reference).
    """
    if seeds is None:
        profile = profile or calibrate(methods, demonstrations, tasks)
        rate = binding_rate(budget_rpm, budget_tpm, window_s, profile.tokens_per_call)
        seeds = seeds_for(seconds, rate, window_s, profile) if math.isfinite(rate) else 1
    scenario_rpm = round(budget_rpm * claim) if (claim and budget_rpm) else None
    scenario_tpm = round(budget_tpm * claim) if (claim and budget_tpm) else None
    server = ChatServer(
        rpm=budget_rpm if server_limits else None,
        tpm=budget_tpm if server_limits else None,
        window_s=window_s,
        retry_after_s=retry_after_s,
        latency_s=latency_s,
    )
    with server, tempfile.TemporaryDirectory() as tmp:
        raw = scenario_raw(
            server.base_url,
            seeds,
            rpm=scenario_rpm,
            tpm=scenario_tpm,
            window_s=window_s,
            methods=methods,
            demonstrations=demonstrations,
            retry=retry,
            tasks=tasks,
        )
        offset = time.time() - time.monotonic()  # server times are monotonic; events' wall-clock
        outcome = _run_scenario(raw, Path(tmp) / "run")
        asked, answered, failed = [], set(), []
        for event in read_events(Path(tmp) / "run" / "events.jsonl"):
            if isinstance(event, ModelRequested):
                asked.append((event.ts, event.request_id))
            elif isinstance(event, ModelResponded):
                answered.add(event.request_id)
            elif isinstance(event, ModelFailed):
                failed.append(event.ts)
        records = sorted(server.requests, key=lambda r: r["t"])
    arrivals = [(r["t"] + offset, r["status"], r.get("tokens", 0)) for r in records]
    if server_limits:
        window = _measured_interval(arrivals, sorted(t for t, _ in asked), sorted(failed), window_s)
    else:  # no limit to wait for: the whole span of traffic
        window = (arrivals[0][0], arrivals[-1][0], False) if arrivals else (0.0, 0.0, False)
    served = [(t, tokens) for t, status, tokens in arrivals if status == 200]
    inside = [(t, tokens) for t, tokens in served if window[0] <= t <= window[1]]
    measured_s = window[1] - window[0]
    first_last = (arrivals[-1][0] - arrivals[0][0]) if arrivals else 0.0
    lost = sum(request_id not in answered for _, request_id in asked)
    row: CaseRow = {
        "case": case,
        "budget_rpm": budget_rpm if server_limits and budget_rpm else "off",
        "budget_tpm": budget_tpm if server_limits and budget_tpm else "off",
        "scenario_rpm": scenario_rpm or "off",
        "scenario_tpm": scenario_tpm or "off",
        "window_s": window_s,
        "binds": _binds(budget_rpm, budget_tpm, served, window_s) if server_limits else "",
        "seeds": seeds,
        "episodes": outcome.episodes,
        "calls": outcome.model_calls,
        "requests": len(inside),
        "tokens": sum(tokens for _, tokens in inside),
        "measured_s": round(measured_s, 2),
        "steady": window[2],
        "requests_per_s": round(len(inside) / measured_s, 2) if measured_s > 0 else 0.0,
        "tokens_per_s": round(sum(t for _, t in inside) / measured_s, 1) if measured_s > 0 else 0.0,
        "achieved_rpm_share": _share(len(inside), budget_rpm, measured_s, window_s)
        if server_limits
        else "",
        "achieved_tpm_share": _share(sum(t for _, t in inside), budget_tpm, measured_s, window_s)
        if server_limits
        else "",
        # every served request over the first-to-last span, start-up burst and tail included
        "first_last_s": round(first_last, 2),
        "first_last_rpm_share": _share(len(served), budget_rpm, first_last, window_s)
        if server_limits
        else "",
        # the server's bucket at its lowest, as a share of its capacity: what the
        # gateway never used (its bucket starts with 90% of a window's budget)
        "server_min_headroom": _min_headroom(served, budget_rpm, budget_tpm, window_s)
        if server_limits
        else "",
        "http_requests": len(arrivals),
        "http_429": sum(status == 429 for _, status, _ in arrivals),
        "retries": outcome.failed_attempts,
        "model_failures": outcome.model_failures,
        "lost_requests": lost,
        "instances_ok": f"{outcome.instances - outcome.instances_failed}/{outcome.instances}",
        "completion_share": round(
            (outcome.instances - outcome.instances_failed) / max(1, outcome.instances), 4
        ),
        "wall_s": outcome.wall_s,
        "episodes_failed": outcome.episodes_failed,
    }
    return row


def _share(amount: float, budget: int | None, seconds: float, window_s: float) -> float | str:
    if not budget or seconds <= 0:
        return ""
    return round(amount / (budget / window_s * seconds), 4)


def _min_headroom(
    served: list[tuple[float, int]], rpm: int | None, tpm: int | None, window_s: float
) -> float | str:
    """The lowest level the server's buckets reached (replayed from the served
    requests' arrival times), as a share of capacity; the lower of the two."""
    shares = []
    for budget, cost in ((rpm, lambda tokens: 1), (tpm, lambda tokens: tokens)):
        if not budget or not served:
            continue
        level, last, lowest = float(budget), served[0][0], float(budget)
        for t, tokens in served:
            level = min(budget, level + (t - last) * budget / window_s)
            last = t
            level -= cost(tokens)
            lowest = min(lowest, level)
        shares.append(lowest / budget)
    return round(min(shares), 4) if shares else ""


def _binds(
    rpm: int | None, tpm: int | None, served: list[tuple[float, int]], window_s: float
) -> str:
    """Which budget allows fewer of these requests per second."""
    if not served:
        return ""
    tokens_per_call = sum(t for _, t in served) / len(served)
    by = {}
    if rpm:
        by["rpm"] = rpm / window_s
    if tpm:
        by["tpm"] = tpm / window_s / tokens_per_call
    return min(by, key=by.__getitem__) if by else ""


# a request asked this long ago that has not reached the server yet is waiting in the
# gateway (for the limiter or the concurrency cap), not in transit
WAITING_S = 0.05


def _measured_interval(
    arrivals: list[tuple[float, int, int]], asked: list[float], failed: list[float], window_s: float
) -> tuple[float, float, bool]:
    """(start, end, steady): from one window after the first request to the last
    arrival at which a request asked at least ``WAITING_S`` before had still not
    reached the server (it was waiting in the gateway); ``steady`` False when no
    such stretch of at least half a window exists (a run too small, or no limit
    to wait for): then first to last request.

    ``arrivals``: (time, status, tokens) by time; ``asked``, ``failed``: sorted
    times of ``model_requested`` and ``model_failed`` events (the same clock).
    """
    if not arrivals:
        return 0.0, 0.0, False
    start = arrivals[0][0] + window_s
    end = None
    served = 0
    for t, status, _ in arrivals:
        if status == 200:
            served += 1
        # asked long enough ago, less answered or failed by now: a lower bound
        # on the requests that have waited at least WAITING_S in the gateway
        waiting = (
            bisect.bisect_right(asked, t - WAITING_S) - served - bisect.bisect_right(failed, t)
        )
        if waiting >= 1:
            end = t
    if end is None or end - start < window_s / 2:
        return arrivals[0][0], arrivals[-1][0], False
    return start, end, True


def run(quick: bool = False) -> SuiteResult:
    seconds, window_s = (8.0, 4.0) if quick else (30.0, WINDOW_S)
    print("  calibrating (one seed, no latency, no limits) ...", file=sys.stderr)
    profile = calibrate()
    print(
        f"  {profile.episodes} episodes, {profile.calls} calls, "
        f"{profile.tokens_per_call:.0f} tokens a call per seed",
        file=sys.stderr,
    )
    rows: list[CaseRow] = []

    def case(name: str, budget: tuple[int, int], secs: float, claim: float = 1.0) -> CaseRow:
        print(f"  {name} ...", file=sys.stderr)
        # budgets scale with the window so the rates stay the same in quick mode
        scale = window_s / WINDOW_S
        rpm, tpm = round(budget[0] * scale), round(budget[1] * scale)
        row = measure(name, rpm, tpm, secs, claim=claim, window_s=window_s, profile=profile)
        print(f"    {_summary(row)}", file=sys.stderr)
        rows.append(row)
        return row

    matched_rpm = case("matched (rpm binds)", BUDGETS["rpm"], seconds)
    matched_tpm = case("matched (tpm binds)", BUDGETS["tpm"], seconds)
    too_high = case("limits 2x too high", BUDGETS["rpm"], seconds / 3, claim=2.0)
    # the reference: matched (rpm binds)'s run, with no limit on either side
    print("  limits off ...", file=sys.stderr)
    scale = window_s / WINDOW_S
    off = measure(
        "limits off (reference)",
        round(BUDGETS["rpm"][0] * scale),
        round(BUDGETS["rpm"][1] * scale),
        window_s=window_s,
        seeds=matched_rpm["seeds"],
        claim=None,
        server_limits=False,
    )
    print(f"    {_summary(off)}", file=sys.stderr)
    rows.append(off)

    matched = [matched_rpm, matched_tpm]
    shares = [
        r["achieved_rpm_share" if r["binds"] == "rpm" else "achieved_tpm_share"] for r in matched
    ]
    numeric = [s for s in shares if isinstance(s, float)]
    worst = min(numeric) if numeric else 0.0
    matched_429 = sum(r["http_429"] for r in matched)
    budget_rate = BUDGETS["rpm"][0] / WINDOW_S
    off_rate = off["requests_per_s"]
    checks = [
        Check(
            name="throughput share of budget (matched limits)",
            measured=f"{worst:.1%}",
            target=">= 95%",
            met=worst >= 0.95 and all(r["steady"] for r in matched),
        ),
        Check(
            name="429s with matched limits", measured=matched_429, target="0", met=matched_429 == 0
        ),
        Check(
            name="lost requests with limits 2x too high",
            measured=too_high["lost_requests"],
            target="0",
            met=too_high["lost_requests"] == 0
            and too_high["instances_ok"].split("/")[0] == too_high["instances_ok"].split("/")[1],
        ),
        Check(
            name="limits off: requests/s vs the rpm budget's rate (limit-bound, not latency-bound)",
            measured=f"{off_rate / budget_rate:.1f}x",
            target=">= 2x",
            met=off_rate / budget_rate >= 2,
        ),
    ]
    for row in rows:
        for key in SHARE_KEYS:
            share = row[key]
            if isinstance(share, float):
                row[key] = f"{share:.1%}"
    notes = [
        f"every role on backend openai against the loopback ChatServer (prose_sim/testing/chat_server.py), "
        f"answering after {LATENCY_S} s; methods {', '.join(METHODS)}, {DEMONSTRATIONS} instances per episode, "
        f"all PLUME users of both tasks, seeds as sized; BERTScore and the response cache off; "
        f"all episodes in flight at once; budgets per {window_s:g} s window (rate_window_s = the server's window_s)",
        f"sizing: a calibration run (one seed) counted {profile.calls} calls and "
        f"{profile.tokens_per_call:.0f} tokens a call per seed ({profile.episodes} episodes); each limited run has "
        f"enough seeds for the start-up window plus the measured time at the binding budget's rate",
        f"measured interval: from one window ({window_s:g} s) after the first request (skipping start-up: "
        "the gateway's bucket starts with 90% of a window's budget and the concurrency cap ramps up from 16) "
        "to the last request the server received while a request asked (model_requested) at least "
        f"{WAITING_S * 1000:g} ms earlier had still not reached it, i.e. was waiting in the gateway; after that "
        "the run's last episodes, not the limiter, set the pace. Shares: served (200) requests and their tokens "
        "in the interval over the budget's rate times its length (about +-1% from run to run: requests are "
        "whole and tokens come in requests of 100-2,500). first_last_rpm_share: all served requests over the "
        "first-to-last span, start-up burst and tail included (above 100%: the burst is spent at once)",
        "server_min_headroom: the server's bucket (replayed from the arrivals) at its lowest, as a share of "
        "its capacity: the part of the budget the gateway never used. About 10% with matched limits: the "
        "gateway's burst of 90% of a window's budget leaves 10% of one window unused once (its steady rate "
        "is the full budget); ~0 when the scenario claims too much",
        "binds: the budget allowing fewer requests/s at the run's tokens per request; the other is loose. "
        "The gateway charges a request's prompt plus max_new_tokens (512) before the call and corrects "
        "to the reported usage after",
        f"429s answer at once with Retry-After {RETRY_AFTER_S:g} s; scenario [retry] attempts = {RETRY['attempts']}, "
        f"backoff_s = {RETRY['backoff_s']}, max_backoff_s = {RETRY['max_backoff_s']}, timeout_s = {RETRY['timeout_s']}; "
        "retries = failed attempts (summary failed_attempts); lost = model_requested with no model_responded",
        "limits off (reference): matched (rpm binds)'s scenario with no rpm/tpm in the scenario or the server; "
        "its requests/s over its own measured interval (first to last request when no steady stretch)",
    ]
    if quick:
        notes.insert(
            0,
            f"--quick: {seconds:g} s measured, {window_s:g} s windows: a smoke test, NOT FOR THE RECORD",
        )
    return SuiteResult(
        suite="ratelimits",
        command="python -m benchmarks ratelimits" + (" --quick" if quick else ""),
        columns=[
            "case",
            "binds",
            "budget_rpm",
            "budget_tpm",
            "scenario_rpm",
            "scenario_tpm",
            "requests",
            "tokens",
            "measured_s",
            "requests_per_s",
            "achieved_rpm_share",
            "achieved_tpm_share",
            "first_last_rpm_share",
            "server_min_headroom",
            "http_429",
            "retries",
            "model_failures",
            "lost_requests",
            "instances_ok",
            "calls",
            "wall_s",
        ],
        rows=[dict(row) for row in rows],
        checks=checks,
        notes=notes,
    )


def _summary(row: Mapping[str, object]) -> str:
    keys = (
        "requests",
        "measured_s",
        "requests_per_s",
        "achieved_rpm_share",
        "achieved_tpm_share",
        "http_429",
        "retries",
        "model_failures",
        "lost_requests",
        "instances_ok",
        "wall_s",
    )
    return ", ".join(f"{k}={row[k]}" for k in keys)
