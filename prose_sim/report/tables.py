"""The paper-style tables: per task, one row per method and agent model.

Each cell is the mean over seeds of the per-seed mean, with the standard
error over seeds, as the paper reports. Quality metrics average the instances
that finished; cost columns (calls, tokens, dollars per demonstration) average
every instance, since a failed one was paid for too.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import msgspec

from prose_sim.metrics.registry import table_metrics
from prose_sim.report.judge_qa import Agreement
from prose_sim.report.rows import Row
from prose_sim.results.collector import summarize as results_summarize
from prose_sim.untrusted import csv_cell, markdown_cell

# (row key, column title, decimals); quality first (the metric registry's table metrics),
# then cost
COLUMNS: list[tuple[str, str, int]] = [
    *((m.name, m.label, m.decimals) for m in table_metrics()),
    ("calls", "Calls/demo", 1),
    ("tokens", "Tokens/demo", 0),
    ("cost_usd", "$/demo", 5),
]
COST_KEYS = {"calls", "tokens", "cost_usd"}


class GroupSummary(msgspec.Struct, kw_only=True):
    task: str
    framework: str
    method: str
    agent_model: str
    seeds: int
    instances: int
    failed: int
    means: dict[str, float]
    errors: dict[str, float]


def summarize(rows: list[Row]) -> list[GroupSummary]:
    """One summary per (task, framework, method, agent model), in a fixed order (the results'
    ``summarize``: quality over the instances that finished, cost over all of them)."""
    keys = [key for key, _, _ in COLUMNS]
    out = []
    for s in results_summarize(
        rows,
        ("task", "framework", "method", "agent_model"),
        [k for k in keys if k not in COST_KEYS],
        [k for k in keys if k in COST_KEYS],
    ):
        task, framework, method, model = s.group
        shown = [k for k in s.means if not math.isnan(s.means[k])]
        out.append(
            GroupSummary(
                task=task,
                framework=framework,
                method=method,
                agent_model=model,
                seeds=s.seeds,
                instances=s.instances,
                failed=s.instances - s.ok,  # unfinished ones too
                means={k: s.means[k] for k in shown},
                errors={k: s.errors[k] for k in shown},
            )
        )
    return out


def cell(value: float | None, error: float | None, decimals: int) -> str:
    if value is None or math.isnan(value):
        return "–"
    text = f"{value:.{decimals}f}"
    if error is not None and not math.isnan(error):
        text += f" ± {error:.{decimals}f}"
    return text


def markdown_tables(summaries: list[GroupSummary]) -> str:
    """One table per (task, framework); columns with no value anywhere are left out."""
    lines: list[str] = []
    by_task: dict[tuple[str, str], list[GroupSummary]] = defaultdict(list)
    for s in summaries:
        by_task[(s.task, s.framework)].append(s)
    for (task, framework), group in by_task.items():
        columns = [c for c in COLUMNS if any(c[0] in s.means for s in group)]
        if not any(s.means.get("cost_usd") for s in group):  # unpriced models: no dollar column
            columns = [c for c in columns if c[0] != "cost_usd"]
        lines += [f"## {markdown_cell(task)} ({markdown_cell(framework)})", ""]
        header = [
            "method",
            "agent model",
            "seeds",
            "instances",
            *[title for _, title, _ in columns],
        ]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["--:"] * (len(header) - 2)) + "|")
        for s in group:
            instances = f"{s.instances}" + (f" ({s.failed} failed)" if s.failed else "")
            cells = [cell(s.means.get(k), s.errors.get(k), d) for k, _, d in columns]
            names = [markdown_cell(s.method), markdown_cell(s.agent_model)]
            lines.append("| " + " | ".join([*names, str(s.seeds), instances, *cells]) + " |")
        lines.append("")
    return "\n".join(lines)


NO_PARSED = "n/a (no parsed verdicts)"


def agreement_table(agreement: dict[tuple[str, str], Agreement]) -> str:
    if not agreement:
        return ""
    lines = [
        "## Judge vs verifiable checker (PPCM verdicts)",
        "",
        "The judge agrees when it scores the component positive exactly when the checker passes "
        "(over the verdicts it gave in a form that parsed).",
        "",
        "| task | component | checker | parsed/verdicts | agreement | checker passed | judge: exhibits |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for (task, component), a in sorted(agreement.items()):
        if a.parsed:
            agreed, exhibits = f"{a.rate:.3f}", f"{a.judge_exhibits / a.parsed:.3f}"
        else:
            agreed = exhibits = NO_PARSED
        lines.append(
            f"| {markdown_cell(task)} | {markdown_cell(component)} | {a.checker} | "
            f"{a.parsed}/{a.judged} | {agreed} | "
            f"{a.checker_passed / a.judged:.3f} | {exhibits} |"
        )
    lines.append("")
    return "\n".join(lines)


def summary_csv(summaries: list[GroupSummary]) -> str:
    """The tables as one CSV: a row per group, ``<metric>_mean`` and ``<metric>_se`` columns."""
    keys = [k for k, _, _ in COLUMNS if any(k in s.means for s in summaries)]
    header = ["task", "framework", "method", "agent_model", "seeds", "instances", "failed"]
    header += [f"{k}_{part}" for k in keys for part in ("mean", "se")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for s in summaries:
        values = []
        for k in keys:
            values += [_num(s.means.get(k)), _num(s.errors.get(k))]
        names = [csv_cell(x) for x in (s.task, s.framework, s.method, s.agent_model)]
        writer.writerow([*names, s.seeds, s.instances, s.failed, *values])
    return buffer.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(round(value, 8))
