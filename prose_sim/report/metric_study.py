"""The metric-validity study: do the writing metrics follow preference quality?

The paper's comparison of frameworks (the released code's
``scripts/compare_frameworks.py``, launched per seed by ``scripts/run_all_experiments.py``):
an agent drafts with every subset of a user's true components (method ``fixed_subset``,
the powerset, the empty set included), so its preference quality is known by
construction. As each released run does, this module correlates, per (task, framework,
seed), every preference measure with every writing measure over all such task instances
(Pearson, Spearman and Kendall, from scipy); the report shows their mean over the seeds,
``correlations.csv`` each seed's. It also plots PPCM against the share of true components
given, one line per framework. A framework whose writing metrics correlate better with
preference quality is the better benchmark.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from pathlib import Path

import msgspec

from prose_sim.metrics.registry import study_metrics
from prose_sim.report.rows import Row, number

# the quality of the preferences an agent drafted with: the released code's "preference"
# metrics in its order (preference_acc, _f1, _pre, _rec, _string_length,
# _llm_judge_similarity), then ours, the share of true components given (the released
# percent_of_matching_components, logged there but not correlated); from the metric registry
PREFERENCE_MEASURES: list[tuple[str, str]] = [
    (m.name, m.study_label) for m in study_metrics("preference")
]
# the released code's "writing" metrics in its order (writing_ldist, _n_ldist, _BS, _ppm,
# _fpm, _avm)
WRITING_METRICS: list[tuple[str, str]] = [(m.name, m.study_label) for m in study_metrics("writing")]
# a fixed_subset episode's method label: "<label>[<indices joined by +>]"
_SUBSET_LABEL = re.compile(r"^.+\[(?:\d+(?:\+\d+)*)?\]$")
PLOT = "ppcm_vs_components_share.png"


class Correlation(msgspec.Struct, frozen=True, kw_only=True):
    task: str
    framework: str
    seed: int
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
    """Per (task, framework, seed), every (preference measure, writing measure) pair's
    correlations over the instances that have both values (one released run's); NaN where
    either is constant or n < 2 (where scipy, as released, gives NaN)."""
    from scipy import stats

    groups: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for row in study_rows(rows):
        groups[(str(row["task"]), str(row["framework"]), int(number(row, "seed")))].append(row)
    out = []
    for (task, framework, seed), group in sorted(groups.items()):
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
                        seed=seed,
                        preference_measure=measure,
                        writing_metric=metric,
                        n=len(pairs),
                        pearson=p,
                        spearman=s,
                        kendall=k,
                    )
                )
    return out


def _mean(values: list[float]) -> float:
    """The mean of the defined values (NaN: none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def markdown(found: list[Correlation], bertscore_note: str = "") -> str:
    """The report section: one table per (task, framework), rows = preference measures,
    cells = Pearson / Spearman / Kendall with each writing measure, each the mean over the
    seeds of the per-seed correlation."""
    if not found:
        return ""
    lines = [
        "## Metric validity (PLUME vs PRELUDE)",
        "",
        "Agents drafting with every subset of each user's true components (method fixed_subset). "
        "Cells: Pearson / Spearman / Kendall correlation between a preference measure (rows) "
        "and a writing measure (columns) over one seed's task instances, as each released run "
        "computes them, averaged over the seeds where defined (each seed's in correlations.csv); "
        "n/a where a measure is constant. A benchmark whose writing metrics follow preference "
        "quality more closely measures it better. Levenshtein is a distance: lower is better, "
        "so a good correlation is negative.",
    ]
    if bertscore_note:
        lines += ["", bertscore_note]
    lines.append("")
    by_panel: dict[tuple[str, str], list[Correlation]] = defaultdict(list)
    for c in found:
        by_panel[(c.task, c.framework)].append(c)
    for (task, framework), group in by_panel.items():
        seeds = sorted({c.seed for c in group})
        per_seed = {seed: max(c.n for c in group if c.seed == seed) for seed in seeds}
        lines += [
            f"### {task} ({framework}), {len(seeds)} seed{'s' if len(seeds) != 1 else ''}, "
            f"{sum(per_seed.values())} instances",
            "",
        ]
        lines.append("| preference measure | " + " | ".join(t for _, t in WRITING_METRICS) + " |")
        lines.append("|---|" + "---|" * len(WRITING_METRICS))
        cells: dict[tuple[str, str], list[Correlation]] = defaultdict(list)
        for c in group:
            cells[(c.preference_measure, c.writing_metric)].append(c)
        for measure, title in PREFERENCE_MEASURES:
            row = [title]
            for metric, _ in WRITING_METRICS:
                cell = cells[(measure, metric)]
                row.append(
                    " / ".join(
                        _fmt(_mean([getattr(c, stat) for c in cell]))
                        for stat in ("pearson", "spearman", "kendall")
                    )
                )
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
