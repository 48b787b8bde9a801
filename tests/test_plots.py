"""Plots a reader can trust: whole-number ticks where the axis counts, every line visible,
no error bars (nor "± s.e.") from one seed."""

from __future__ import annotations

import pytest

from prose_sim.report.plots import files_only, write_plots
from prose_sim.report.tables import summarize


def _rows(seeds=(1,), methods=("no_learning", "prose", "cipher1"), demonstrations=2):
    rows = []
    for seed in seeds:
        for method in methods:
            for d in range(demonstrations):
                # no_learning and cipher1 score the same at every demonstration
                ppcm = 0.5 * d + seed * 0.1 if method == "prose" else 0.25
                rows.append(
                    {
                        "task": "summarization",
                        "framework": "plume",
                        "method": method,
                        "agent_model": "m",
                        "seed": seed,
                        "user": "u",
                        "instance": d,
                        "demonstration": d,
                        "status": "ok",
                        "ppcm": ppcm,
                        "input_tokens": 10,
                        "output_tokens": 5,
                    }
                )
    return rows


@pytest.fixture
def axes_of(monkeypatch):
    """The axes each plot drew, kept open to inspect."""
    files_only()
    import matplotlib.pyplot as plt

    drawn: dict[str, object] = {}
    close = plt.close

    def keep(fig=None):
        drawn[f"fig{len(drawn)}"] = fig

    monkeypatch.setattr(plt, "close", keep)
    yield drawn
    for fig in drawn.values():
        close(fig)


def _draw(tmp_path, rows, axes_of):
    names = [p.name for p in write_plots(summarize(rows), rows, tmp_path)]
    return dict(zip(names, (fig.axes[0] for fig in axes_of.values())))


def test_the_learning_curve_has_whole_number_ticks_for_demonstrations(tmp_path, axes_of):
    ax = _draw(tmp_path, _rows(), axes_of)["ppcm_learning_curve.png"]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_identical_learning_curves_each_show_and_say_so(tmp_path, axes_of):
    ax = _draw(tmp_path, _rows(), axes_of)["ppcm_learning_curve.png"]
    lines = [line for line in ax.get_lines() if line.get_label() and line.get_marker() != "None"]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "cipher1 (same as no_learning)" in labels or "no_learning (same as cipher1)" in labels
    markers = {line.get_marker() for line in lines}
    assert len(markers) == len(lines) == 3  # each its own marker
    xs = [tuple(line.get_xdata()) for line in lines]
    assert len(set(xs)) == 3  # set apart sideways: none hidden under another


def test_one_seed_draws_no_error_bars_and_says_no_standard_error(tmp_path, axes_of):
    plots = _draw(tmp_path, _rows(seeds=(1,)), axes_of)
    for name, ax in plots.items():
        assert "±" not in ax.get_ylabel(), name
        assert not ax.collections, name  # error bars are line collections
        assert "one seed, no error bars" in ax.get_title()


def test_several_seeds_draw_error_bars_labelled_as_such(tmp_path, axes_of):
    ax = _draw(tmp_path, _rows(seeds=(1, 2)), axes_of)["ppcm_by_method.png"]
    assert "± s.e." in ax.get_ylabel()
    assert ax.collections or any(line.get_marker() == "_" for line in ax.get_lines())
