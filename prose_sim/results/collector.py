"""Results built from the event stream: per-instance rows and run accounting.

The collector only observes events, so the same code builds results during a
run and later from a recorded log. ``results.csv`` holds only values that do
not depend on timing (so runs at any concurrency give identical bytes);
timings go to the summary.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from prose_sim.events import (
    EpisodeFinished,
    EpisodeStarted,
    Event,
    InstanceFinished,
    InstanceStarted,
    JudgeVerdict,
    MetricsComputed,
    ModelFailed,
    ModelRequested,
    ModelResponded,
    ParseFailed,
)
from prose_sim.metrics.registry import summary_metrics
from prose_sim.models.budget import Spend
from prose_sim.untrusted import csv_cell

ID_COLUMNS = [
    "task",
    "framework",
    "method",
    "agent_model",
    "user_model",
    "judge_model",
    "seed",
    "user",
    "instance",
    "demonstration",  # the user's how-many-th task instance in the episode (0-based)
    "document_id",
    "status",
]
ACCOUNT_COLUMNS = [
    "parse_failures",
    "calls",
    "failed_calls",
    "input_tokens",
    "output_tokens",
    "agent_calls",
    "agent_input_tokens",
    "agent_output_tokens",
]
# in rows (for reports) but not in results.csv: USD depends on what the response cache held
NOT_IN_CSV = {"cost_usd"}


class Usage(msgspec.Struct):
    calls: int = 0
    failed: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    parse_failures: int = 0
    cached: int = 0  # calls answered from the response cache (included in calls)
    cost_usd: float = 0.0
    # answers the server cut at max_new_tokens (finish_reason "length"), whether they parsed
    # or not; counted apart from parse failures
    truncated: int = 0

    def merge(self, other: Usage) -> None:
        self.truncated += other.truncated
        self.cached += other.cached
        self.cost_usd += other.cost_usd
        self.calls += other.calls
        self.failed += other.failed
        self.attempts += other.attempts
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.latency_s += other.latency_s
        self.parse_failures += other.parse_failures

    def add(self, event: ModelResponded | ModelFailed) -> None:
        self.attempts += event.attempts
        if isinstance(event, ModelFailed):
            self.failed += 1
            return
        self.calls += 1
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.latency_s += event.latency_s
        self.cached += event.cached
        self.cost_usd += event.cost_usd
        self.truncated += event.finish_reason == "length"


class ResultsCollector:
    def __init__(self) -> None:
        self._episodes: dict[str, EpisodeStarted] = {}
        self._rows: dict[tuple[str, int], dict[str, object]] = {}
        self._instance_usage: dict[tuple[str, int], dict[str, Usage]] = defaultdict(
            lambda: defaultdict(Usage)
        )
        self.usage_by_role_purpose: dict[tuple[str, str], Usage] = defaultdict(Usage)
        # (method, role, purpose) -> usage, for calls per demonstration by purpose
        self.usage_by_method: dict[tuple[str, str, str], Usage] = defaultdict(Usage)
        self._parse_failures: dict[tuple[str, int], int] = defaultdict(int)
        self._seen_of_user: dict[tuple[str, str], int] = defaultdict(int)
        self.episodes_finished: dict[str, str] = {}
        self.instances_finished = 0
        self.instances_failed = 0
        self.requests = 0  # model requests made (answered, failed or in flight)
        # method -> [finished instances, their model calls]: calls per instance as run so far
        self.finished_by_method: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.events = 0
        # what the run spent (USD, calls sent to a model, their tokens): models.budget
        self.spend = Spend()

    def observe(self, event: Event) -> None:
        self.events += 1
        match event:  # the kinds a run has most of first (each case is a type check)
            case ModelRequested():
                self.requests += 1
            case JudgeVerdict():
                pass  # in the judge's MetricsComputed
            case ModelResponded() | ModelFailed():
                self.usage_by_role_purpose[(event.role, event.purpose)].add(event)
                self._instance_usage[(event.episode_id, event.instance)][event.role].add(event)
                method = self._episodes[event.episode_id].method
                self.usage_by_method[(method, event.role, event.purpose)].add(event)
                self.spend.observe(event)
            case ParseFailed():
                self.usage_by_role_purpose[(event.role, event.purpose)].parse_failures += 1
                method = self._episodes[event.episode_id].method
                self.usage_by_method[(method, event.role, event.purpose)].parse_failures += 1
                self._parse_failures[(event.episode_id, event.instance)] += 1
            case InstanceStarted():
                ep = self._episodes[event.episode_id]
                demonstration = self._seen_of_user[(event.episode_id, event.persona)]
                self._seen_of_user[(event.episode_id, event.persona)] += 1
                self._rows[(event.episode_id, event.instance)] = {
                    "task": ep.task,
                    "framework": ep.framework,
                    "method": ep.method,
                    "agent_model": ep.models.get("agent", ""),
                    "user_model": ep.models.get("user", ""),
                    "judge_model": ep.models.get("judge", ""),
                    "seed": ep.seed,
                    "user": event.persona,
                    "instance": event.instance,
                    "demonstration": demonstration,
                    "document_id": event.document_id,
                    "status": "unfinished",
                }
            case MetricsComputed():
                self._rows[(event.episode_id, event.instance)].update(event.metrics)
            case InstanceFinished():
                key = (event.episode_id, event.instance)
                self._rows[key]["status"] = event.status
                self.instances_finished += 1
                self.instances_failed += event.status != "ok"
                done = self.finished_by_method[self._episodes[event.episode_id].method]
                done[0] += 1
                done[1] += sum(
                    u.calls + u.failed for u in self._instance_usage.get(key, {}).values()
                )
            case EpisodeStarted():
                self._episodes[event.episode_id] = event
            case EpisodeFinished():
                self.episodes_finished[event.episode_id] = event.status

    def observe_all(self, events: Iterable[Event]) -> ResultsCollector:
        for event in events:
            self.observe(event)
        return self

    def rows(self) -> list[dict[str, object]]:
        """One row per task instance, in a fixed order, with its model accounting."""
        out = []
        for key in sorted(self._rows, key=_row_order(self._rows)):
            row = dict(self._rows[key])
            usage = self._instance_usage.get(key, {})
            total = Usage()
            for role_usage in usage.values():
                total.merge(role_usage)
            agent = usage.get("agent", Usage())
            row.update(
                parse_failures=self._parse_failures.get(key, 0),
                calls=total.calls,
                failed_calls=total.failed,
                input_tokens=total.input_tokens,
                output_tokens=total.output_tokens,
                agent_calls=agent.calls,
                agent_input_tokens=agent.input_tokens,
                agent_output_tokens=agent.output_tokens,
                cost_usd=round(total.cost_usd, 8),
            )
            out.append(row)
        return out

    def results_csv(self, rows: list[dict[str, object]] | None = None) -> str:
        """``results.csv``: ``rows`` (those of ``rows()``, computed when not given)."""
        rows = self.rows() if rows is None else rows
        metric_names = sorted(
            {k for row in rows for k in row} - set(ID_COLUMNS) - set(ACCOUNT_COLUMNS) - NOT_IN_CSV
        )
        columns = ID_COLUMNS + metric_names + ACCOUNT_COLUMNS
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(k, "")) for k in columns] for row in rows)
        return buffer.getvalue()


def _row_order(rows):
    def key(k):
        row = rows[k]
        return (row["task"], row["framework"], row["method"], row["seed"], k[0], k[1])

    return key


def _cell(value: object) -> object:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    return csv_cell(value)  # a persona's or a document's name a spreadsheet would evaluate


# --- summaries -----------------------------------------------------------------


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def stderr(values: list[float]) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n < 2:
        return math.nan
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


class Summary(msgspec.Struct, kw_only=True):
    """One group of task instances: a method's, by task and framework (and agent model)."""

    group: tuple[str, ...]  # the values of the columns grouped by
    seeds: int
    instances: int
    ok: int  # finished
    unfinished: int  # an interrupted or stopped run did not finish them
    means: dict[str, float]  # the mean over seeds of per-seed means (NaN: no value)
    errors: dict[str, float]  # its standard error over seeds (NaN: fewer than two seeds)
    pooled: dict[str, float]  # the plain mean over the instances (the released code's)

    @property
    def failed(self) -> int:
        """Instances that ended failed (not those left unfinished)."""
        return self.instances - self.ok - self.unfinished


def value(row: dict[str, object], key: str) -> float | None:
    """The row's ``key`` as a number; None when it has none (absent, empty or NaN).
    ``tokens`` is input plus output tokens."""
    if key == "tokens":
        return _number(row["input_tokens"]) + _number(row["output_tokens"])
    cell = row.get(key, "")
    if cell in ("", None):
        return None
    if not isinstance(cell, int | float | str):
        raise TypeError(f"{key} = {cell!r}: not a number")
    number = float(cell)
    return None if math.isnan(number) else number


def summarize(
    rows: list[dict[str, object]],
    by: tuple[str, ...],
    quality: Iterable[str],
    every_instance: Iterable[str] = (),
) -> list[Summary]:
    """The one per-method summary: per group of rows with the same ``by`` columns (in sorted
    order), each measure's mean over seeds of per-seed means with its standard error, and
    its plain mean over the instances. ``quality`` measures average the instances that
    finished; ``every_instance`` measures (cost) all of them, since a failed one was paid for."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        groups[tuple(str(row[column]) for column in by)].append(row)
    measures = [(key, True) for key in quality] + [(key, False) for key in every_instance]
    out = []
    for group, members in sorted(groups.items()):
        ok = [r for r in members if r["status"] == "ok"]
        means, errors, pooled = {}, {}, {}
        for key, finished_only in measures:
            over = ok if finished_only else members
            seeded = [(r["seed"], value(r, key)) for r in over]  # each row's value read once
            means[key], errors[key] = _over_seeds(seeded)
            pooled[key] = mean([v for _, v in seeded if v is not None])
        out.append(
            Summary(
                group=group,
                seeds=len({r["seed"] for r in members}),
                instances=len(members),
                ok=len(ok),
                unfinished=sum(r["status"] == "unfinished" for r in members),
                means=means,
                errors=errors,
                pooled=pooled,
            )
        )
    return out


class MethodSummary(msgspec.Struct):
    task: str
    framework: str
    method: str
    instances: int
    failed: int  # instances that ended failed (not those a stopped run left unfinished)
    metrics: dict[str, float]  # per-seed means, averaged over seeds
    stderr: dict[str, float]  # standard error over seeds
    calls_per_instance: float
    tokens_per_instance: float
    unfinished: int = 0  # instances an interrupted or stopped run did not finish


def over_seeds(rows: list[dict[str, object]], value) -> tuple[float, float]:
    """The mean over seeds of the per-seed means of ``value(row)`` (None: the row has no
    value), and its standard error over seeds, as the paper reports. NaN when no row has one."""
    return _over_seeds([(row["seed"], value(row)) for row in rows])


def _over_seeds(seeded: list[tuple[object, float | None]]) -> tuple[float, float]:
    """``over_seeds`` of (seed, value) pairs, in the rows' order."""
    by_seed: dict[object, list[float]] = defaultdict(list)
    for seed, v in seeded:
        if v is not None and not math.isnan(v):
            by_seed[seed].append(v)
    per_seed = [mean(values) for values in by_seed.values()]
    return mean(per_seed), stderr(per_seed)


def summarize_methods(
    rows: list[dict[str, object]], metric_names: list[str] | None = None
) -> list[MethodSummary]:
    """``summary.json``'s per-method summaries: ``summarize`` by task, framework and method, of
    ``metric_names`` (default: the registry's summary metrics that some row has)."""
    if metric_names is None:
        metric_names = [m for m in summary_metrics() if any(m in r for r in rows)]
    return [
        MethodSummary(
            task=s.group[0],
            framework=s.group[1],
            method=s.group[2],
            instances=s.instances,
            failed=s.failed,
            unfinished=s.unfinished,
            metrics={name: s.means[name] for name in metric_names},
            stderr={name: s.errors[name] for name in metric_names},
            calls_per_instance=s.pooled["calls"],
            tokens_per_instance=s.pooled["tokens"],
        )
        for s in summarize(rows, ("task", "framework", "method"), metric_names, ("calls", "tokens"))
    ]


def _number(value: object) -> float:
    """A row's count as a float (rows hold ints and floats under ``object``)."""
    assert isinstance(value, (int, float))
    return float(value)
