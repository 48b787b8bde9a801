"""The metric-validity study: do the writing metrics follow preference quality?

The paper's comparison of frameworks (the released code's
``scripts/compare_frameworks.py``): an agent drafts with every subset of a user's
true components (method ``fixed_subset``, the powerset, the empty set included),
so its preference quality is known by construction. Per (task, framework), this
module correlates each preference-quality measure with each writing metric over
all such task instances (Pearson, Spearman and Kendall, from scipy), and plots
PPCM against the share of true components given, one line per framework. A
framework whose writing metrics correlate better with preference quality is the
better benchmark.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from pathlib import Path

import msgspec

from prose_sim.report.rows import Row, number

# the quality of the preferences an agent drafted with, and the writing metrics
PREFERENCE_MEASURES: list[tuple[str, str]] = [
    ("true_components_share", "share of true components"),
    ("preference_accuracy", "pref. accuracy"),
    ("preference_f1", "pref. BERTScore F1"),
    ("preference_similarity", "pref. similarity"),
    ("preference_length", "pref. length"),
]
WRITING_METRICS: list[tuple[str, str]] = [
    ("ppcm", "PPCM"),
    ("fpm", "FPM"),
    ("levenshtein_norm", "Lev. norm"),
    ("bertscore", "BERTScore"),
]
# a fixed_subset episode's method label: "<label>[<indices joined by +>]"
_SUBSET_LABEL = re.compile(r"^.+\[(?:\d+(?:\+\d+)*)?\]$")
PLOT = "ppcm_vs_components_share.png"


class Correlation(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    framework: str
    preference_measure: str
    writing_metric: str
    n: int
    pearson: float
    spearman: float
    kendall: float


def study_rows(rows: list[Row]) -> list[Row]:
    """The finished task instances of fixed_subset episodes."""
    return [r for r in rows if r["status"] == "ok" and _SUBSET_LABEL.match(str(r["method"]))]


def correlations(rows: list[Row]) -> list[Correlation]:
    """Per (task, framework), every (preference measure, writing metric) pair's correlations
    over the instances that have both values; NaN where either is constant or n < 2."""
    from scipy import stats

    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in study_rows(rows):
        groups[(str(row["task"]), str(row["framework"]))].append(row)
    out = []
    for (task, framework), group in sorted(groups.items()):
        for measure, _ in PREFERENCE_MEASURES:
            for metric, _ in WRITING_METRICS:
                pairs = [
                    (number(r, measure), number(r, metric))
                    for r in group
                    if measure in r and metric in r
                ]
                xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
                if len(pairs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
                    p = s = k = math.nan
                else:
                    p = float(stats.pearsonr(xs, ys).statistic)
                    s = float(stats.spearmanr(xs, ys).statistic)
                    k = float(stats.kendalltau(xs, ys).statistic)
                out.append(
                    Correlation(
                        task=task,
                        framework=framework,
                        preference_measure=measure,
                        writing_metric=metric,
                        n=len(pairs),
                        pearson=p,
                        spearman=s,
                        kendall=k,
                    )
                )
    return out


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def markdown(found: list[Correlation], bertscore_note: str = "") -> str:
    """The report section: one table per (task, framework), rows = preference measures,
    cells = Pearson / Spearman / Kendall with each writing metric."""
    if not found:
        return ""
    lines = [
        "## Metric validity (PLUME vs PRELUDE)",
        "",
        "Agents drafting with every subset of each user's true components (method fixed_subset). "
        "Cells: Pearson / Spearman / Kendall correlation between a preference-quality measure (rows) "
        "and a writing metric (columns) over the task instances; n/a where a measure is constant. "
        "A benchmark whose writing metrics follow preference quality more closely measures it better. "
        "Levenshtein is a distance: lower is better, so a good correlation is negative.",
    ]
    if bertscore_note:
        lines += ["", bertscore_note]
    lines.append("")
    by_panel: dict[tuple[str, str], list[Correlation]] = defaultdict(list)
    for c in found:
        by_panel[(c.task, c.framework)].append(c)
    for (task, framework), group in by_panel.items():
        n = max(c.n for c in group)
        lines += [f"### {task} ({framework}), {n} instances", ""]
        lines.append("| preference measure | " + " | ".join(t for _, t in WRITING_METRICS) + " |")
        lines.append("|---|" + "---|" * len(WRITING_METRICS))
        cells = {(c.preference_measure, c.writing_metric): c for c in group}
        for measure, title in PREFERENCE_MEASURES:
            row = [title]
            for metric, _ in WRITING_METRICS:
                c = cells[(measure, metric)]
                row.append(f"{_fmt(c.pearson)} / {_fmt(c.spearman)} / {_fmt(c.kendall)}")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def correlations_csv(found: list[Correlation]) -> str:
    buffer = io.StringIO()
    fields = list(Correlation.__struct_fields__)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for c in found:
        writer.writerow(
            [
                "" if isinstance(v, float) and math.isnan(v) else v
                for v in (getattr(c, f) for f in fields)
            ]
        )
    return buffer.getvalue()


def ppcm_by_share(
    rows: list[Row],
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(task, framework) -> [(share of true components, mean PPCM)], by share."""
    cells: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in study_rows(rows):
        if "ppcm" in r and "true_components_share" in r:
            cells[(str(r["task"]), str(r["framework"]))][
                round(number(r, "true_components_share"), 6)
            ].append(number(r, "ppcm"))
    return {
        key: [(x, sum(v) / len(v)) for x, v in sorted(by.items())]
        for key, by in sorted(cells.items())
    }


def write_plot(
    rows: list[Row], out_dir: Path, title_note: str = "", notice: str = ""
) -> list[Path]:
    """PPCM against the share of true components given: a panel per task, a line per framework.

    ``notice``: the smoke-test line, shown as the figure's title."""
    lines = ppcm_by_share(rows)
    if not lines:
        return []
    from prose_sim.report.plots import files_only

    files_only()
    import matplotlib.pyplot as plt

    tasks = sorted({task for task, _ in lines})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, framework), points in lines.items():
            if t == task:
                ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=framework)
        ax.set_title(task + (f" ({title_note})" if title_note else ""))
        ax.set_xlabel("share of true components given")
        ax.set_ylabel("mean PPCM")
        ax.set_ylim(-2.1, 2.1)
        ax.legend()
    if notice:
        fig.suptitle(notice, fontsize=9, color="#B00020")
    fig.tight_layout()
    path = out_dir / PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
