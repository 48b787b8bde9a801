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

from prose_sim.metrics.registry import aggregation_metrics
from prose_sim.report.rows import Row
from prose_sim.results.collector import summarize
from prose_sim.untrusted import markdown_cell

METRICS: list[tuple[str, str]] = [(m.name, m.label) for m in aggregation_metrics()]


def markdown(rows: list[Row], bertscore_note: str = "") -> str:
    """Per (task, framework, method): each metric as "instances mean | seeds mean ± SE"."""
    shown = [(k, t) for k, t in METRICS if any(k in r for r in rows)]
    if not rows or not shown:
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
    for s in summarize(rows, ("task", "framework", "method"), [k for k, _ in shown]):
        cells = []
        for key, _ in shown:
            pooled = s.pooled[key]
            cells.append(
                "-" if math.isnan(pooled) else f"{pooled:.3f} · {_pm(s.means[key], s.errors[key])}"
            )
        names = " | ".join(markdown_cell(x) for x in s.group)
        lines.append(f"| {names} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pm(value: float, err: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" + (f" ± {err:.3f}" if not math.isnan(err) else "")
