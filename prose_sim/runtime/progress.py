"""Progress of a run: a live bar on a terminal, structlog lines otherwise.

Both read the results collector's counters (and each local model server's
live state) on a timer, so showing progress costs nothing per event. They are
drawn from a thread of their own (``ProgressDisplay``), so they keep their
period while the event loop is busy with thousands of episodes. Every
tick shows instances done / total and model calls done / expected (the
expected count is an estimate: see ``runtime.expected``), calls and tokens per
second over the last ``RATE_WINDOW_S``, an ETA, failures so far, and per local
server its queue and the batch it decodes. The first tick is drawn at once, so
the totals show from the first second.

The ETA is the remaining calls at the pace since the first answers were seen
(the calls that ended since then over the time since then: the wait for the
first answers, a local model's first batch, would otherwise weigh on the whole
estimate). Until ``WARM_CALLS`` calls have ended there is no pace to speak of,
and the ETA says so ("warming up") instead of guessing a number.
tests/test_progress.py replays the quickstart's workload as recorded on the
local server (benchmarks/traces/quickstart_progress.json.gz) and holds the
estimate within 2x of the true remaining time from a tenth to nine tenths of the
calls; in the last tenth, when the few calls left end together, it overestimates
(up to about 4x: seconds shown for the last seconds).

On a terminal the bar is one line that fits the terminal's width: instances
done/total, elapsed time and ETA always; then calls, failures, rates and each
local server's state while they fit, the servers' detail cut first.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Sequence

import msgspec
import structlog
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from prose_sim.config import BudgetSettings
from prose_sim.models.backends.local import ServerLive
from prose_sim.models.budget import Spend, budget_text
from prose_sim.results.collector import ResultsCollector
from prose_sim.runtime.expected import PlanTotals
from prose_sim.untrusted import terminal_text

log = structlog.get_logger("prose_sim")
RATE_WINDOW_S = 30.0
# calls that must have ended before the ETA is a number: this many, or this share of the
# expected calls if more
WARM_CALLS = 5
WARM_SHARE = 0.02
WARMING_UP = "warming up: the first answers are being generated"


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
    eta_s: float | None  # None while warming up (too few calls ended to know a pace)
    failed_calls: int
    failed_instances: int
    failed_episodes: int
    servers: list[ServerLive] = []
    # what the run has spent so far (models.budget), and its [budget] as text ("" without one);
    # shown when a role is priced or a budget is set (``show_spend``)
    spend: Spend = msgspec.field(default_factory=Spend)
    budget: str = ""
    show_spend: bool = False


class Tracker:
    """Turns the collector's counters into snapshots, keeping a window of samples for the rates."""

    def __init__(
        self,
        collector: ResultsCollector,
        totals: PlanTotals,
        servers: Sequence = (),
        clock=time.monotonic,
        *,
        budget: BudgetSettings | None = None,
        priced: bool = False,
    ):
        self.budget = budget if budget is not None and budget.limited else None
        self.show_spend = priced or self.budget is not None
        self.collector = collector
        self.totals = totals
        self.servers = list(servers)
        self.clock = clock
        self.started = clock()
        calls, tokens = self._calls_tokens()
        self._first = (self.started, calls, tokens)
        self._samples: deque[tuple[float, int, int]] = deque([self._first])
        # when the first answers were seen, and how many: the pace is measured from there
        self._first_answer: tuple[float, int] | None = None

    def _calls_tokens(self) -> tuple[int, int]:
        calls = tokens = 0
        for usage in list(self.collector.usage_by_role_purpose.values()):
            calls += usage.calls + usage.failed
            tokens += usage.input_tokens + usage.output_tokens
        return calls, tokens

    def snapshot(self) -> Snapshot:
        """The figures now. Runs on the progress thread while the loop's thread updates the
        collector: the collector's dicts are copied at once (``list``/``dict`` of a dict is
        one step for CPython's other threads), then read; nothing of the collector is changed."""
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
        servers = [server.live() for server in self.servers]
        in_flight = max(0, c.requests - calls)
        expected = max(
            round(self.totals.expected_calls(dict(c.finished_by_method))), calls + in_flight
        )
        finished = len(c.episodes_finished) == self.totals.episodes and self.totals.episodes > 0
        done = calls - self._first[1]
        if done and self._first_answer is None:
            self._first_answer = (now, done)
        eta = None
        if self._first_answer is not None:
            at, first = self._first_answer
            eta = eta_s(done, expected - calls, in_flight, done - first, now - at)
        if finished:
            eta = 0.0
        failed_calls = sum(u.failed for u in list(c.usage_by_role_purpose.values()))
        spend = msgspec.structs.replace(c.spend)  # a copy: the loop's thread adds to it
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
            failed_calls=failed_calls,
            failed_instances=c.instances_failed,
            failed_episodes=list(c.episodes_finished.values()).count("failed"),
            servers=servers,
            spend=spend,
            budget=budget_text(spend, self.budget) if self.budget is not None else "",
            show_spend=self.show_spend,
        )


def eta_s(
    done: int, remaining: int, in_flight: int, since_done: int, since_s: float
) -> float | None:
    """Seconds left: the remaining calls (at least those in flight) at the pace since the first
    answers (``since_done`` calls in ``since_s`` seconds; the wait for the first answers, a
    local model's first batch, is left out). None while fewer than the warm-up calls have
    ended, or none since the first answers."""
    if done < max(WARM_CALLS, WARM_SHARE * (done + remaining)) or since_done <= 0 or since_s <= 0:
        return None
    return max(remaining, in_flight) * since_s / since_done


def eta_text(s: Snapshot) -> str:
    return WARMING_UP if s.eta_s is None else duration(s.eta_s)


def duration(seconds: float | None) -> str:
    """``None`` -> 'estimating'; else e.g. 45s, 4m05s, 2h10m."""
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


def spend_text(s: Snapshot) -> str:
    """``spent $0.0123`` (of the budget, where one is set)."""
    return f"spent {s.budget}" if s.budget else f"spent ${s.spend.usd:,.4f}"


def render_line(s: Snapshot) -> str:
    """The whole progress line, uncut (the log's and the tests' view of the bar)."""
    return " · ".join([head_text(s), *detail_parts(s)])


def head_text(s: Snapshot) -> str:
    """What the bar always shows: instances done/total, elapsed time and the ETA."""
    eta = eta_text(s) if s.eta_s is None else f"ETA {eta_text(s)}"
    return f"instances {s.instances_done:,}/{s.instances:,} · {duration(s.elapsed_s)} · {eta}"


def detail_parts(s: Snapshot) -> list[str]:
    """The rest, most useful first (the bar drops them from the end when short of room)."""
    parts = [
        f"calls {s.calls_done:,}/~{s.calls_expected:,} ({s.in_flight:,} in flight)",
        f"failed {failures_text(s)}",
    ]
    if s.show_spend:
        parts.append(spend_text(s))
    parts += [f"{s.calls_per_s:,.1f} calls/s", f"{s.tokens_per_s:,.0f} tok/s"]
    # a model's name is the scenario's text: no control characters
    return parts + [f"{terminal_text(live.model)}: {server_text(live)}" for live in s.servers]


BAR_WIDTH = 24
MIN_BAR = 6
MIN_CUT = 12  # a part cut shorter than this is left out


def bar_line(s: Snapshot, width: int) -> Text:
    """The bar's line in ``width`` columns: the head always (the bar itself shrinks, then
    goes, to make room), then the detail parts while they fit; the last one that does not
    is cut with an ellipsis, the servers' detail being last."""
    head = head_text(s)
    count, _, rest = head.removeprefix("instances ").partition(" · ")
    bar_width = min(BAR_WIDTH, width - len(head) - 2)
    line = Text("instances ", style="bold")
    if bar_width >= MIN_BAR:
        filled = round(bar_width * s.instances_done / s.instances) if s.instances else 0
        line.append("━" * filled, style="bar.finished" if filled == bar_width else "bar.complete")
        line.append("━" * (bar_width - filled), style="bar.back")
        line.append(" ")
    line.append(count, style="progress.download")
    line.append(" · ")
    line.append(rest, style="progress.remaining")
    for part in detail_parts(s):
        room = width - line.cell_len - 3
        if len(part) <= room:
            line.append(" · " + part)
            continue
        if room >= MIN_CUT:
            line.append(" · " + part[: room - 1] + "…")
        break
    line.truncate(width)
    return line


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
    if s.show_spend:
        fields["spent"] = spend_text(s).removeprefix("spent ")
    for live in s.servers:
        fields[f"server[{terminal_text(live.model)}]"] = server_text(live)
    return fields


class ProgressDisplay:
    """The progress bar or log lines, drawn from a thread of their own.

    With 10,000 episodes in flight one pass of the event loop (every episode whose model call
    has come back) takes seconds; a task of the loop would draw only between passes. The
    thread keeps the period whatever the loop does. It only reads: the collector's counters
    are updated on the loop's thread, and the tracker takes atomic copies of them (see
    ``Tracker.snapshot``). ``stop`` ends it (at the run's end, and before the quick exit after
    a signal, so no line is cut by ``os._exit``).

    mode: auto (bar on a terminal), bar, log, or off. ``servers``: local model servers
    (anything with ``live() -> ServerLive``); ``console``: where the bar goes (stderr)."""

    def __init__(
        self,
        collector: ResultsCollector,
        totals: PlanTotals,
        mode: str = "auto",
        interval_s: float | None = None,
        servers: Sequence = (),
        console: Console | None = None,
        *,
        header: Sequence[str] = (),
        budget: BudgetSettings | None = None,
        priced: bool = False,
    ):
        """``header``: lines said once before the first tick (the cost projection, what a
        shard takes of the limits): above the bar, or as fields of the first log line.
        ``budget`` and ``priced``: the spend is shown when a budget is set or a role priced."""
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.interval_s = interval_s or (0.2 if mode == "bar" else 5.0)
        self.tracker = Tracker(collector, totals, servers, budget=budget, priced=priced)
        self.header = list(header)
        self.console = console or Console(stderr=True)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._bar if mode == "bar" else self._lines,
            name="prose_sim progress",
            daemon=True,  # never holds the process up, should a line block on a full pipe
        )

    def start(self) -> None:
        if self.mode != "off":
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop drawing and wait for the thread (a line being written is finished)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ProgressDisplay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bar(self) -> None:
        view = _BarView(self.tracker.snapshot())
        for line in self.header:  # a run's text (model names): no control characters, no markup
            self.console.print(Text(terminal_text(line)), soft_wrap=True)
        with Live(view, console=self.console, auto_refresh=False, transient=False) as live:
            live.refresh()
            while not self._stopping.wait(self.interval_s):
                view.snapshot = self.tracker.snapshot()
                live.refresh()
            view.snapshot = self.tracker.snapshot()
            live.refresh()

    def _lines(self) -> None:
        first = {"header": " | ".join(self.header)} if self.header else {}
        while True:  # the first line at once: totals from the first second
            log.info("progress", **log_fields(self.tracker.snapshot()), **first)
            first = {}
            if self._stopping.wait(self.interval_s):
                return


class _BarView:
    """The live bar: the latest snapshot, drawn at the console's width when rich refreshes."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield bar_line(self.snapshot, options.max_width)
