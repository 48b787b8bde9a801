"""The report's plots (PNG): PPCM by method, PPCM learning curves, cost vs PPCM.

Every plot has one panel per (task, framework); a method is labelled with its
agent model when the report combines several. Plots of a metric that no
instance has (e.g. PPCM with the judge turned off) are not drawn.

Titles say what the numbers are not: the smoke-test notice of runs on the
scripted or embedded model, and "one seed, no error bars" when a panel has a
single seed (and then no error bar is drawn, nor "± s.e." written). An axis
whose values are all equal shows that one value, not ticks of invented
precision around it; an axis that counts (demonstrations) has whole-number
ticks. Every line shows: each method has its own marker, the learning curves
are set a little apart sideways, and a series equal to another's says so in the
legend ("same as no_learning").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prose_sim.report.rows import Row
from prose_sim.report.tables import GroupSummary
from prose_sim.results.collector import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTS = ("ppcm_by_method.png", "ppcm_learning_curve.png", "cost_vs_ppcm.png")


def files_only() -> None:
    """matplotlib draws into files, never a display (call before importing pyplot)."""
    import matplotlib

    matplotlib.use("Agg")


def _panels(summaries: list[GroupSummary]) -> dict[tuple[str, str], list[GroupSummary]]:
    panels: dict[tuple[str, str], list[GroupSummary]] = defaultdict(list)
    for s in summaries:
        if "ppcm" in s.means:
            panels[(s.task, s.framework)].append(s)
    return panels


def _label(s: GroupSummary, several_models: bool) -> str:
    return f"{s.method} ({s.agent_model})" if several_models else s.method


def _figure(count: int) -> tuple[Figure, Sequence[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, count, figsize=(5.5 * count, 4.2), squeeze=False)
    return fig, axes[0]


ONE_SEED = "one seed, no error bars"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# the learning curves' sideways offset between methods, in demonstrations
DODGE = 0.06


def write_plots(
    summaries: list[GroupSummary], rows: list[Row], out_dir: Path, notice: str = ""
) -> list[Path]:
    """Draw the plots into ``out_dir``; returns the files written. ``notice``: the smoke-test line."""
    panels = _panels(summaries)
    if not panels:
        return []
    files_only()
    import matplotlib.pyplot as plt

    several = len({s.agent_model for s in summaries}) > 1
    written = []
    for name, draw in (
        ("ppcm_by_method.png", _ppcm_by_method),
        ("ppcm_learning_curve.png", _learning_curve),
        ("cost_vs_ppcm.png", _cost_vs_ppcm),
    ):
        fig, axes = _figure(len(panels))
        for ax, ((task, framework), group) in zip(axes, panels.items()):
            one_seed = max(s.seeds for s in group) <= 1
            draw(ax, group, rows, several, one_seed)
            ax.set_title(f"{task} ({framework})" + (f"\n{ONE_SEED}" if one_seed else ""))
            ax.grid(alpha=0.3)
        if notice:
            fig.suptitle(notice, fontsize=9, color="#B00020")
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def _honest_axes(ax: Axes) -> None:
    """An axis whose plotted values are all one number shows just that number."""
    for axis, values in (("x", _plotted(ax, 0)), ("y", _plotted(ax, 1))):
        if len(values) >= 1 and len(set(values)) == 1:
            (ax.set_xticks if axis == "x" else ax.set_yticks)([values[0]], [f"{values[0]:g}"])


def _plotted(ax: Axes, column: int) -> list[float]:
    """The data values of the lines drawn (points and error caps) on one axis, NaN left out."""
    import numpy as np  # matplotlib's own dependency

    values: list[float] = []
    for line in ax.get_lines():
        data = line.get_xdata() if column == 0 else line.get_ydata()
        values += [float(v) for v in np.ravel(data)]  # an ArrayLike, by its type: 1-D here
    return [v for v in values if not math.isnan(v)]


def _ppcm_by_method(
    ax: Axes, group: list[GroupSummary], rows: list[Row], several: bool, one_seed: bool
) -> None:
    labels = [_label(s, several) for s in group]
    values = [s.means["ppcm"] for s in group]
    if one_seed:
        ax.bar(range(len(group)), values, color="#4C72B0")
        ax.set_ylabel("PPCM (mean over instances)")
    else:
        errors = [0.0 if math.isnan(s.errors["ppcm"]) else s.errors["ppcm"] for s in group]
        ax.bar(range(len(group)), values, yerr=errors, capsize=4, color="#4C72B0")
        ax.set_ylabel("PPCM (mean ± s.e. over seeds)")
    ax.set_xticks(range(len(group)), labels, rotation=30, ha="right")
    ax.set_ylim(-2, 2)
    ax.axhline(0, color="black", linewidth=0.8)


def _same_as(series: dict[str, object]) -> dict[str, str]:
    """label -> the label of an earlier series with exactly the same values."""
    first: dict[str, str] = {}
    same: dict[str, str] = {}
    for label, values in series.items():
        key = repr(values)
        if key in first:
            same[label] = first[key]
        else:
            first[key] = label
    return same


def _learning_curve(
    ax: Axes, group: list[GroupSummary], rows: list[Row], several: bool, one_seed: bool
) -> None:
    from matplotlib.ticker import MaxNLocator

    curves: dict[str, tuple[list[int], list[float], list[float]]] = {}
    # per demonstration index: mean over seeds of per-seed means, with its s.e.
    by = ("task", "framework", "method", "agent_model", "demonstration")
    points: dict[tuple[str, ...], dict[int, tuple[float, float]]] = defaultdict(dict)
    for p in summarize(rows, by, ["ppcm"]):
        points[p.group[:4]][int(p.group[4])] = (p.means["ppcm"], p.errors["ppcm"])
    for s in group:
        mine = points[(s.task, s.framework, s.method, s.agent_model)]
        xs = [x for x in sorted(mine) if not math.isnan(mine[x][0])]
        ys = [mine[x][0] for x in xs]
        es = [0.0 if math.isnan(mine[x][1]) else mine[x][1] for x in xs]
        curves[_label(s, several)] = (xs, ys, es)
    same = _same_as({label: (xs, ys) for label, (xs, ys, _) in curves.items()})
    for i, (label, (xs, ys, es)) in enumerate(curves.items()):
        shift = (i - (len(curves) - 1) / 2) * DODGE
        ax.errorbar(
            [x + 1 + shift for x in xs],
            ys,
            yerr=None if one_seed else es,
            marker=MARKERS[i % len(MARKERS)],
            capsize=0 if one_seed else 3,
            label=label + (f" (same as {same[label]})" if label in same else ""),
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(
        "demonstration (methods set slightly apart)" if len(curves) > 1 else "demonstration"
    )
    ax.set_ylabel("PPCM" if one_seed else "PPCM (mean ± s.e. over seeds)")
    ax.set_ylim(-2, 2)
    ax.legend(fontsize=8)


def _cost_vs_ppcm(
    ax: Axes, group: list[GroupSummary], rows: list[Row], several: bool, one_seed: bool
) -> None:
    priced = any(s.means.get("cost_usd", 0.0) > 0 for s in group)
    key, unit = (
        ("cost_usd", "USD per demonstration") if priced else ("tokens", "tokens per demonstration")
    )
    points = {_label(s, several): (s.means.get(key, 0.0), s.means["ppcm"]) for s in group}
    same = _same_as(dict(points))
    for i, s in enumerate(group):
        label = _label(s, several)
        error = 0.0 if math.isnan(s.errors["ppcm"]) else s.errors["ppcm"]
        ax.errorbar(
            *points[label],
            yerr=None if one_seed else error,
            marker=MARKERS[i % len(MARKERS)],
            markersize=9 if label in same else 6,
            fillstyle="none" if label in same else "full",
            capsize=0 if one_seed else 3,
            linestyle="none",
            label=label + (f" (same as {same[label]})" if label in same else ""),
        )
    ax.set_xlabel(unit)
    ax.set_ylabel("PPCM" if one_seed else "PPCM (mean ± s.e. over seeds)")
    ax.legend(fontsize=8)
    _honest_axes(ax)  # autoscaled axes: e.g. every method at PPCM 0 and the same cost
