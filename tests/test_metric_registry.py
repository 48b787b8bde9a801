"""The metric registry and the one per-method summary every output reads."""

from __future__ import annotations

import csv
import io

import pytest

from prose_sim.metrics.registry import METRICS, study_metrics, summary_metrics, table_metrics
from prose_sim.report import aggregation
from prose_sim.report.tables import COST_KEYS, summary_csv
from prose_sim.report.tables import summarize as table_summaries
from prose_sim.results.collector import summarize, summarize_methods


def _row(seed, status="ok", **metrics):
    return dict(
        task="t",
        framework="plume",
        method="m",
        agent_model="a",
        seed=seed,
        status=status,
        input_tokens=10,
        output_tokens=5,
        calls=2,
        **metrics,
    )


def test_every_metric_is_registered_once_with_a_label_a_source_and_a_sane_range():
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for m in METRICS:
        assert m.label and m.source, m.name
        assert m.low is None or m.high is None or m.low < m.high, m.name


def test_the_study_orders_are_the_released_codes_without_gaps():
    for kind in ("preference", "writing"):
        ranks = [m.study_rank for m in study_metrics(kind)]
        assert ranks == list(range(len(ranks))), kind
    assert [m.name for m in study_metrics("writing")] == [
        "levenshtein",
        "levenshtein_norm",
        "bertscore",
        "ppcm",
        "fpm",
        "ppcm_fpm_mean",
    ]


def test_report_csv_columns_follow_the_registrys_table_metrics_then_cost():
    everything = {m.name: 0.5 for m in table_metrics()}
    header = next(csv.reader(io.StringIO(summary_csv(table_summaries([_row(1, **everything)])))))
    metrics = [h.removesuffix("_mean") for h in header if h.endswith("_mean")]
    assert metrics == [m.name for m in table_metrics()] + ["calls", "tokens"]
    assert "cost_usd" in COST_KEYS  # priced runs only: no value here, no column


def test_summary_json_has_the_registrys_summary_metrics_that_some_row_has():
    [s] = summarize_methods([_row(1, ppcm=1.0, levenshtein=3.0), _row(2, bertscore=0.5)])
    assert list(s.metrics) == [
        m for m in summary_metrics() if m in ("ppcm", "levenshtein", "bertscore")
    ]


def test_one_summary_gives_the_tables_and_summary_json_the_same_means():
    rows = [
        _row(1, ppcm=1.0),
        _row(1, ppcm=0.0),
        _row(2, ppcm=2.0),
        _row(2, status="failed", ppcm=-2.0),
        _row(2, status="unfinished"),
    ]
    [method] = summarize_methods(rows, ["ppcm"])
    [table] = table_summaries(rows)
    assert method.metrics["ppcm"] == table.means["ppcm"] == pytest.approx((0.5 + 2.0) / 2)
    assert method.stderr["ppcm"] == table.errors["ppcm"]
    # summary.json tells unfinished from failed; the tables count both as not finished
    assert (method.failed, method.unfinished, table.failed) == (1, 1, 2)


def test_the_pooled_mean_is_over_instances_and_the_seed_mean_over_seeds():
    rows = [_row(1, ppcm=1.0), _row(1, ppcm=1.0), _row(1, ppcm=1.0), _row(2, ppcm=0.0)]
    [s] = summarize(rows, ("task", "framework", "method"), ["ppcm"])
    assert s.pooled["ppcm"] == 0.75 and s.means["ppcm"] == 0.5
    assert "0.750 · 0.500 ± 0.500" in aggregation.markdown(rows)


def test_a_summary_without_any_value_is_not_a_number_and_the_tables_leave_it_out():
    [s] = summarize([_row(1)], ("method",), ["ppcm"])
    assert s.means["ppcm"] != s.means["ppcm"]  # NaN
    [table] = table_summaries([_row(1)])
    assert "ppcm" not in table.means
