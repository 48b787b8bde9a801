"""Progress of a run: a live bar on a terminal, structlog lines otherwise.

Both read the results collector's counters (and each local model server's
live state) on a timer, so showing progress costs nothing per event. Every
tick shows instances done / total and model calls done / expected (the
expected count is an estimate: see ``runtime.expected``), calls and tokens per
second over the last ``RATE_WINDOW_S``, an ETA from the remaining calls at that
rate (the whole run's rate while the window saw no call end; before any call has ended, a
rough guess, marked ~, from the pace of the local servers' batches in flight), failures so far, and per local server its queue and the batch it decodes.
The first tick is drawn at once, so the totals show from the first second.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence

import anyio
import msgspec
import structlog
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prose_sim.models.backends.local import ServerLive
from prose_sim.results.collector import ResultsCollector
from prose_sim.runtime.expected import PlanTotals
from prose_sim.untrusted import terminal_text

log = structlog.get_logger("prose_sim")
RATE_WINDOW_S = 30.0


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    elapsed_s: float
    episodes_done: int
    episodes: int
    instances_done: int
    instances: int
    calls_done: int  # answered or failed
    calls_expected: int  # an estimate (never below calls_done + in_flight)
    in_flight: int
    tokens: int
    calls_per_s: float
    tokens_per_s: float
    eta_s: float | None  # None until a rate is known
    # the ETA is from the local servers' batches in flight (no call has ended yet): a rough guess
    eta_provisional: bool = False
    failed_calls: int
    failed_instances: int
    failed_episodes: int
    servers: list[ServerLive] = []


class Tracker:
    """Turns the collector's counters into snapshots, keeping a window of samples for the rates."""

    def __init__(
        self,
        collector: ResultsCollector,
        totals: PlanTotals,
        servers: Sequence = (),
        clock=time.monotonic,
    ):
        self.collector = collector
        self.totals = totals
        self.servers = list(servers)
        self.clock = clock
        self.started = clock()
        calls, tokens = self._calls_tokens()
        self._first = (self.started, calls, tokens)
        self._samples: deque[tuple[float, int, int]] = deque([self._first])

    def _calls_tokens(self) -> tuple[int, int]:
        calls = tokens = 0
        for usage in self.collector.usage_by_role_purpose.values():
            calls += usage.calls + usage.failed
            tokens += usage.input_tokens + usage.output_tokens
        return calls, tokens

    def snapshot(self) -> Snapshot:
        c = self.collector
        now = self.clock()
        calls, tokens = self._calls_tokens()
        self._samples.append((now, calls, tokens))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        t0, calls0, tokens0 = self._samples[0]
        span = now - t0
        calls_per_s = (calls - calls0) / span if span > 0 else 0.0
        tokens_per_s = (tokens - tokens0) / span if span > 0 else 0.0
        # the ETA's rate: the window's, or the whole run's when the window saw no call end
        # (a local model reading long prompts can take longer than the window)
        rate, elapsed = calls_per_s, now - self._first[0]
        if rate == 0 and elapsed > 0:
            rate = (calls - self._first[1]) / elapsed
        servers = [server.live() for server in self.servers]
        provisional = False
        if rate == 0:  # no call has ended yet: the pace of the batches being decoded
            rate = decode_rate(servers)
            provisional = rate > 0
        in_flight = max(0, c.requests - calls)
        expected = max(round(self.totals.expected_calls(c.finished_by_method)), calls + in_flight)
        finished = len(c.episodes_finished) == self.totals.episodes and self.totals.episodes > 0
        eta = None
        if finished:
            eta = 0.0
        elif rate > 0:
            eta = max(expected - calls, in_flight) / rate
        failed_calls = sum(u.failed for u in c.usage_by_role_purpose.values())
        return Snapshot(
            elapsed_s=now - self.started,
            episodes_done=len(c.episodes_finished),
            episodes=self.totals.episodes,
            instances_done=c.instances_finished,
            instances=self.totals.instances,
            calls_done=calls,
            calls_expected=expected,
            in_flight=in_flight,
            tokens=tokens,
            calls_per_s=calls_per_s,
            tokens_per_s=tokens_per_s,
            eta_s=eta,
            eta_provisional=provisional and eta is not None,
            failed_calls=failed_calls,
            failed_instances=c.instances_failed,
            failed_episodes=sum(s == "failed" for s in c.episodes_finished.values()),
            servers=servers,
        )


def decode_rate(servers: Sequence[ServerLive]) -> float:
    """Calls per second the batches in flight are on course for: each batch's rows over the
    time its token budget would take at its pace so far (rows that stop early make it sooner)."""
    rate = 0.0
    for live in servers:
        if live.batch and live.step and live.busy_s > 0:
            rate += live.batch / (live.busy_s * live.max_steps / live.step)
    return rate


def eta_text(s: Snapshot) -> str:
    return ("~" if s.eta_provisional else "") + duration(s.eta_s)


def duration(seconds: float | None) -> str:
    """``None`` -> 'estimating' (no call done yet); else e.g. 45s, 4m05s, 2h10m."""
    if seconds is None:
        return "estimating"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def server_text(live: ServerLive) -> str:
    if not live.batch:
        batch = "idle"
    elif not live.step:
        batch = f"batch {live.batch} reading prompts for {duration(live.busy_s)}"
    else:
        batch = (
            f"batch {live.batch} at step {live.step}/{live.max_steps} after {duration(live.busy_s)}"
        )
    return f"{live.queued} queued, {batch}"


def failures_text(s: Snapshot) -> str:
    if not (s.failed_calls or s.failed_instances or s.failed_episodes):
        return "0"
    return f"{s.failed_calls} calls, {s.failed_instances} instances, {s.failed_episodes} episodes"


def render_line(s: Snapshot) -> str:
    """The whole progress line (the bar shows its own instance count and elapsed time)."""
    parts = [f"instances {s.instances_done:,}/{s.instances:,}", detail_text(s)]
    return " · ".join(parts)


def detail_text(s: Snapshot) -> str:
    parts = [
        f"ETA {eta_text(s)}",
        f"calls {s.calls_done:,}/~{s.calls_expected:,} ({s.in_flight:,} in flight)",
        f"{s.calls_per_s:,.1f} calls/s",
        f"{s.tokens_per_s:,.0f} tok/s",
        f"failed {failures_text(s)}",
    ]
    # a model's name is the scenario's text: no control characters, no console markup
    parts += [f"{escape(terminal_text(live.model))}: {server_text(live)}" for live in s.servers]
    return " · ".join(parts)


def log_fields(s: Snapshot) -> dict[str, object]:
    """The structlog line's fields: the same figures as the bar."""
    fields: dict[str, object] = {
        "episodes": f"{s.episodes_done}/{s.episodes}",
        "instances": f"{s.instances_done}/{s.instances}",
        "model_calls": f"{s.calls_done}/~{s.calls_expected}",
        "in_flight": s.in_flight,
        "tokens": s.tokens,
        "calls_per_s": round(s.calls_per_s, 2),
        "tokens_per_s": round(s.tokens_per_s, 1),
        "eta": eta_text(s),
        "failed_calls": s.failed_calls,
        "failed_instances": s.failed_instances,
        "elapsed_s": round(s.elapsed_s, 1),
    }
    for live in s.servers:
        fields[f"server[{terminal_text(live.model)}]"] = server_text(live)
    return fields


async def show_progress(
    collector: ResultsCollector,
    totals: PlanTotals,
    mode: str = "auto",
    interval_s: float | None = None,
    servers: Sequence = (),
) -> None:
    """Run until cancelled. mode: auto (bar on a terminal), bar, log, or off.

    ``servers``: local model servers (anything with ``live() -> ServerLive``)."""
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    if mode == "off":
        await anyio.sleep_forever()
    tracker = Tracker(collector, totals, servers)
    if mode == "bar":
        await _bar(tracker, interval_s or 0.2)
    else:
        await _lines(tracker, interval_s or 5.0)


async def _bar(tracker: Tracker, interval_s: float) -> None:
    columns = (
        TextColumn("instances"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("run", total=tracker.totals.instances, detail="")
        try:
            while True:
                s = tracker.snapshot()
                bar.update(task, completed=s.instances_done, detail=detail_text(s))
                await anyio.sleep(interval_s)
        finally:
            s = tracker.snapshot()
            bar.update(task, completed=s.instances_done, detail=detail_text(s))


async def _lines(tracker: Tracker, interval_s: float) -> None:
    while True:  # the first line at once: totals from the first second
        log.info("progress", **log_fields(tracker.snapshot()))
        await anyio.sleep(interval_s)
