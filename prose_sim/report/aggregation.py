"""The two ways of averaging a metric over a method's task instances.

* The released code's: one run per (framework, task, agent, seed), each
  reporting its mean over all of its task instances (every user's together);
  pooled over the report's seeds here, that is the plain mean over all instances.
* Ours (the main tables): the mean of per-seed means, with its standard error over
  seeds, as the paper's tables report.

The two agree when every seed has the same number of finished instances; they
differ when instances failed unevenly across seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict

from prose_sim.report.rows import Row, number
from prose_sim.results.collector import mean, over_seeds
from prose_sim.untrusted import markdown_cell

METRICS: list[tuple[str, str]] = [
    ("ppcm", "PPCM"),
    ("fpm", "FPM"),
    ("ppcm_fpm_mean", "(PPCM+FPM)/2"),
    ("levenshtein_norm", "Lev. norm"),
    ("bertscore", "BERTScore"),
    ("preference_accuracy", "Pref. acc."),
    ("preference_f1", "Pref. F1"),
]


def instance_mean(rows: list[Row], metric: str) -> float:
    """The mean over every finished instance that has the metric (the released code's)."""
    return mean([number(r, metric) for r in rows if r["status"] == "ok" and metric in r])


def markdown(rows: list[Row], bertscore_note: str = "") -> str:
    """Per (task, framework, method): each metric as "instances mean | seeds mean ± SE"."""
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(str(row["task"]), str(row["framework"]), str(row["method"]))].append(row)
    shown = [(k, t) for k, t in METRICS if any(k in r for r in rows)]
    if not groups or not shown:
        return ""
    lines = [
        "## Aggregation: the released code's means and ours",
        "",
        "Each cell: the mean over all finished task instances (what the released code reports per "
        "run, pooled over seeds), then our mean of per-seed means ± its standard error over seeds "
        "(the main tables' cells).",
    ]
    if bertscore_note:
        lines += ["", bertscore_note]
    lines += [
        "",
        "| task | framework | method | " + " | ".join(t for _, t in shown) + " |",
        "|---|---|---|" + "--:|" * len(shown),
    ]
    for (task, framework, method), group in sorted(groups.items()):
        ok = [r for r in group if r["status"] == "ok"]
        cells = []
        for key, _ in shown:
            pooled = instance_mean(group, key)
            seeds, err = over_seeds(ok, lambda r, k=key: number(r, k) if k in r else None)
            cells.append("-" if math.isnan(pooled) else f"{pooled:.3f} · {_pm(seeds, err)}")
        names = " | ".join(markdown_cell(x) for x in (task, framework, method))
        lines.append(f"| {names} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pm(value: float, err: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" + (f" ± {err:.3f}" if not math.isnan(err) else "")
