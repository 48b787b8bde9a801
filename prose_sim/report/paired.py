"""Paired comparisons: each method against another on the task instances both ran.

A task instance is one document of one user under one seed, of one task and framework:
``(task, framework, seed, user, document_id)``. Two methods of a run (or of two runs of the
same grid, say with two agent models) that both finished an instance are compared on it,
so the users' and documents' own difficulty cancels out of the difference.

For each pair and headline metric (the metric registry's ``headline_metrics``):

* the mean difference, method minus baseline, over the shared instances (each instance
  counts once; an instance one of them did not finish, or has no value of the metric for,
  is left out and counted as unpaired);
* the relative change, that difference over the baseline's mean on the same instances
  ("+33%" as the paper states it); none when that mean is not positive;
* a 95% interval of each, by a two-stage paired bootstrap that takes the seeds as the
  replicates: each of ``RESAMPLES`` resamples draws the seeds with replacement, then, in each
  drawn seed, its users with replacement (a user's instances go together), and recomputes
  both statistics; the interval is the resamples' 2.5th and 97.5th percentiles. The random
  draws start from a fixed seed, so a report is the same each time it is built. With one
  seed there are no replicates, and the interval is "n/a (1 seed)", never a number.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections import defaultdict
from collections.abc import Sequence

import msgspec
import numpy as np

from prose_sim.metrics.registry import BY_NAME, headline_metrics
from prose_sim.report.rows import Row, number
from prose_sim.untrusted import csv_cell, markdown_cell

RESAMPLES = 2000
LEVEL = 0.95
RANDOM_SEED = 20250613  # every comparison's draws start here: the report is deterministic
DRAWS_PER_BATCH = 4_000_000  # user draws made at once (bounds the memory of a large population)

# (task, framework, seed, user, document id): the instances two methods are matched on
InstanceKey = tuple[str, str, object, str, str]


class LabeledRows(msgspec.Struct, frozen=True):
    """A method's rows under the label the comparisons show (the method label, or
    ``RUN/method`` when several runs are compared)."""

    label: str
    rows: list[Row]


class Comparison(msgspec.Struct, kw_only=True):
    task: str
    framework: str
    method: str
    baseline: str
    metric: str
    instances: int  # shared
    unpaired: int  # finished by only one of the two (or with the metric for only one)
    seeds: int  # of the shared instances
    method_mean: float
    baseline_mean: float
    difference: float
    difference_low: float = math.nan
    difference_high: float = math.nan
    relative: float = math.nan  # a fraction: 0.33 is +33%
    relative_low: float = math.nan
    relative_high: float = math.nan
    interval: str = ""  # how the intervals were found, or why there are none

    @property
    def favours(self) -> str:
        """The label the difference's interval favours ("" when it holds 0, or is n/a, or
        the metric has no better direction)."""
        direction = BY_NAME[self.metric].direction
        if not direction or math.isnan(self.difference_low):
            return ""
        if self.difference_low > 0:
            return self.method if direction == "higher" else self.baseline
        if self.difference_high < 0:
            return self.baseline if direction == "higher" else self.method
        return ""


BOOTSTRAP = f"paired bootstrap, {RESAMPLES} resamples of seeds, then users within seeds"
NO_RELATIVE_INTERVAL = (
    "no interval of the relative change where the baseline's mean is not positive in every resample"
)


def pairs(labels: Sequence[str], baseline: str = "") -> list[tuple[str, str]]:
    """(method, baseline) pairs: each label against ``baseline``, else every pair, a later
    label against an earlier one."""
    if baseline:
        return [(label, baseline) for label in labels if label != baseline]
    return [(labels[j], labels[i]) for i in range(len(labels)) for j in range(i + 1, len(labels))]


def compare(
    groups: Sequence[LabeledRows], baseline: str = "", metrics: Sequence[str] | None = None
) -> list[Comparison]:
    """Every comparison of the labels' rows (in the groups' order) per task and framework, on
    the headline metrics that some row has (or ``metrics``)."""
    names = (
        list(metrics)
        if metrics is not None
        else [
            m.name for m in headline_metrics() if any(m.name in r for g in groups for r in g.rows)
        ]
    )
    # (task, framework) -> label -> metric -> instance -> values
    values: dict[tuple[str, str], dict[str, dict[str, dict[InstanceKey, list[float]]]]] = (
        defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    )
    for group in groups:
        for row in group.rows:
            if row.get("status") != "ok":
                continue
            key = _instance(row)
            for name in names:
                value = row.get(name)
                if value is None or value == "":
                    continue
                x = number(row, name)
                if not math.isnan(x):
                    values[(key[0], key[1])][group.label][name][key].append(x)
    order = list(dict.fromkeys(g.label for g in groups))
    out = []
    for (task, framework), by_label in sorted(values.items()):
        present = [label for label in order if label in by_label]
        for method, base in pairs(present, baseline if baseline in present else ""):
            if baseline and base != baseline:
                continue
            for name in names:
                a = {k: sum(v) / len(v) for k, v in by_label[method][name].items()}
                b = {k: sum(v) / len(v) for k, v in by_label[base][name].items()}
                if not a and not b:
                    continue
                out.append(_comparison(task, framework, method, base, name, a, b))
    return out


def _instance(row: Row) -> InstanceKey:
    return (
        str(row["task"]),
        str(row["framework"]),
        row["seed"],
        str(row["user"]),
        str(row["document_id"]),
    )


def _comparison(
    task: str,
    framework: str,
    method: str,
    baseline: str,
    metric: str,
    a: dict[InstanceKey, float],
    b: dict[InstanceKey, float],
) -> Comparison:
    shared = sorted(a.keys() & b.keys(), key=_sort_key)
    result = Comparison(
        task=task,
        framework=framework,
        method=method,
        baseline=baseline,
        metric=metric,
        instances=len(shared),
        unpaired=len(a.keys() ^ b.keys()),
        seeds=len({k[2] for k in shared}),
        method_mean=math.nan,
        baseline_mean=math.nan,
        difference=math.nan,
    )
    if not shared:
        result.interval = "n/a (no shared instances)"
        return result
    method_values = np.array([a[k] for k in shared])
    base_values = np.array([b[k] for k in shared])
    result.method_mean = float(method_values.mean())
    result.baseline_mean = float(base_values.mean())
    result.difference = float((method_values - base_values).mean())
    if result.baseline_mean > 0:
        result.relative = result.difference / result.baseline_mean
    if result.seeds < 2:
        result.interval = "n/a (1 seed)"
        return result
    # clusters: one per (seed, user), in a fixed order, grouped by seed
    clusters: dict[tuple[object, str], list[int]] = defaultdict(list)
    for i, k in enumerate(shared):
        clusters[(k[2], k[3])].append(i)
    keys = list(clusters)  # sorted already, since ``shared`` is
    users_per_seed = [
        sum(1 for s, _ in keys if s == seed) for seed in dict.fromkeys(s for s, _ in keys)
    ]
    count = np.array([len(clusters[k]) for k in keys], dtype=float)
    diff_sum = np.array([(method_values - base_values)[clusters[k]].sum() for k in keys])
    base_sum = np.array([base_values[clusters[k]].sum() for k in keys])
    weights = _resample_weights(tuple(users_per_seed))
    differences = (weights @ diff_sum) / (weights @ count)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    result.difference_low, result.difference_high = float(low), float(high)
    result.interval = BOOTSTRAP
    if not math.isnan(result.relative):
        bases = weights @ base_sum
        if bool((bases > 0).all()):
            low, high = np.percentile((weights @ diff_sum) / bases, [tail, 100 - tail])
            result.relative_low, result.relative_high = float(low), float(high)
        else:
            result.interval = f"{BOOTSTRAP}; {NO_RELATIVE_INTERVAL}"
    return result


def _sort_key(key: InstanceKey) -> tuple:
    task, framework, seed, user, document = key
    return (
        task,
        framework,
        (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed)),
        user,
        document,
    )


@functools.lru_cache(maxsize=64)
def _resample_weights(users_per_seed: tuple[int, ...]) -> np.ndarray:
    """(RESAMPLES, clusters): how often each (seed, user) cluster is drawn in each resample:
    the seeds drawn with replacement, then in each drawn seed its users with replacement.
    The same for every comparison of the same shape (seeds and their users), so it is made
    once per shape; read-only."""
    rng = np.random.default_rng(RANDOM_SEED)
    users = np.array(users_per_seed)
    seeds, most, clusters = len(users), int(users.max()), int(users.sum())
    offsets = np.concatenate([[0], np.cumsum(users)[:-1]])
    counts = np.zeros(RESAMPLES * clusters, dtype=np.int64)
    batch = max(1, DRAWS_PER_BATCH // (seeds * most))  # resamples drawn at once
    for first in range(0, RESAMPLES, batch):
        n = min(batch, RESAMPLES - first)
        drawn = rng.integers(0, seeds, size=(n, seeds))  # the seeds of each resample
        size = users[drawn][..., None]  # (n, seeds, 1): each drawn seed's users
        picks = np.floor(rng.random((n, seeds, most)) * size).astype(np.int64)
        taken = np.arange(most)[None, None, :] < size  # a seed draws as many as it has
        cells = (
            (np.arange(first, first + n)[:, None, None] * clusters)
            + offsets[drawn][..., None]
            + picks
        )
        counts += np.bincount(cells[taken], minlength=RESAMPLES * clusters)
    weights = counts.reshape(RESAMPLES, clusters).astype(float)
    weights.flags.writeable = False
    return weights


# --- output --------------------------------------------------------------------------


def _signed(value: float, decimals: int) -> str:
    """``+0.125``; a value that rounds to zero is ``+0.000`` (never ``-0.000``)."""
    return f"{round(value, decimals) + 0.0:+.{decimals}f}"


def _interval(low: float, high: float, decimals: int, percent: bool = False) -> str:
    if math.isnan(low):
        return ""
    scale, unit = (100, "%") if percent else (1, "")
    return f" [{_signed(low * scale, decimals)}{unit}, {_signed(high * scale, decimals)}{unit}]"


def cell(c: Comparison) -> str:
    """``+0.125 [-0.050, +0.300] · +33% [-10%, +80%]`` (intervals left out when n/a)."""
    if math.isnan(c.difference):
        return "–"
    decimals = BY_NAME[c.metric].decimals
    text = _signed(c.difference, decimals) + _interval(
        c.difference_low, c.difference_high, decimals
    )
    if not math.isnan(c.relative):
        text += f" · {_signed(c.relative * 100, 1)}%" + _interval(
            c.relative_low, c.relative_high, 1, percent=True
        )
    return text


def markdown(comparisons: list[Comparison], baseline: str = "") -> str:
    """One table per task and framework: a row per pair, a column per headline metric."""
    if not comparisons:
        return ""
    metrics = list(dict.fromkeys(c.metric for c in comparisons))
    headers = []
    for name in metrics:
        m = BY_NAME[name]
        arrow = {"higher": " ↑", "lower": " ↓"}.get(m.direction, "")
        headers.append(m.label + arrow)
    # each comparison's procedure, and what it could not give; every phrase said once
    intervals = list(
        dict.fromkeys(
            part
            for c in sorted(comparisons, key=lambda c: c.interval)
            for part in c.interval.split("; ")
            if part
        )
    )
    lines = [
        "## Paired comparisons",
        "",
        (
            f"Each method against the baseline {markdown_cell(baseline)}"
            if baseline
            else "Every pair of methods (a later one against an earlier one)"
        )
        + ", on the task instances both finished (same task, framework, seed, user and document). "
        "Each cell: the mean difference (method − baseline) [95% interval] · the relative change "
        "(the difference over the baseline's mean on those instances; none when that mean is not "
        "positive) [95% interval]. ↑: higher is better, ↓: lower is better. Shared and unpaired "
        "instances: the first metric's (report_paired.csv has each metric's). Intervals: "
        + "; ".join(markdown_cell(i) for i in intervals)
        + ".",
        "",
    ]
    by_group: dict[tuple[str, str], dict[tuple[str, str], dict[str, Comparison]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for c in comparisons:
        by_group[(c.task, c.framework)][(c.method, c.baseline)][c.metric] = c
    for (task, framework), by_pair in by_group.items():
        lines += [
            f"### {markdown_cell(task)} ({markdown_cell(framework)})",
            "",
            "| method | baseline | shared | unpaired | " + " | ".join(headers) + " |",
            "|---|---|--:|--:|" + "---|" * len(headers),
        ]
        for (method, base), by_metric in by_pair.items():
            first = next(iter(by_metric.values()))
            cells = [cell(by_metric[m]) if m in by_metric else "–" for m in metrics]
            lines.append(
                f"| {markdown_cell(method)} | {markdown_cell(base)} | {first.instances} | "
                f"{first.unpaired} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return "\n".join(lines)


CSV_COLUMNS = (
    "task",
    "framework",
    "method",
    "baseline",
    "metric",
    "direction",
    "instances",
    "unpaired",
    "seeds",
    "method_mean",
    "baseline_mean",
    "difference",
    "difference_low",
    "difference_high",
    "relative_change",
    "relative_change_low",
    "relative_change_high",
    "favours",
    "interval",
)


def comparisons_csv(comparisons: list[Comparison]) -> str:
    """A row per comparison and metric; ``relative_change`` is a fraction (0.33: +33%), an
    empty cell is a value there is none of (an interval with one seed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in comparisons:
        writer.writerow(
            [
                *(csv_cell(x) for x in (c.task, c.framework, c.method, c.baseline)),
                c.metric,
                BY_NAME[c.metric].direction,
                c.instances,
                c.unpaired,
                c.seeds,
                *(
                    _num(x)
                    for x in (
                        c.method_mean,
                        c.baseline_mean,
                        c.difference,
                        c.difference_low,
                        c.difference_high,
                        c.relative,
                        c.relative_low,
                        c.relative_high,
                    )
                ),
                csv_cell(c.favours),
                c.interval,
            ]
        )
    return buffer.getvalue()


def _num(value: float) -> str:
    return "" if math.isnan(value) else repr(round(value, 8))
