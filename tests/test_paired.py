"""The report's paired comparisons: methods compared on the task instances they share."""

from __future__ import annotations

import csv
import io
import math
import random
from collections import defaultdict

import pytest

from prose_sim.cli import main
from prose_sim.report.paired import (
    BOOTSTRAP,
    NO_RELATIVE_INTERVAL,
    LabeledRows,
    compare,
    comparisons_csv,
    markdown,
    pairs,
)
from prose_sim.scenario import load_scenario

SCENARIO = """
name = "paired"
seeds = [1, 2]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.cipher1]
[methods.oracle]
[metrics]
bertscore = ""
"""
HEADLINE = ("ppcm", "fpm", "levenshtein_norm")


def row(method, seed, user, document, ppcm, status="ok", task="t", framework="plume"):
    return dict(
        task=task,
        framework=framework,
        method=method,
        seed=seed,
        user=user,
        document_id=document,
        status=status,
        ppcm=ppcm,
    )


def groups(rows):
    by: dict[str, list] = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    return [LabeledRows(label, by[label]) for label in dict.fromkeys(r["method"] for r in rows)]


def one(comparisons, method, baseline, metric="ppcm"):
    (found,) = [
        c for c in comparisons if (c.method, c.baseline, c.metric) == (method, baseline, metric)
    ]
    return found


# --- the computation, on rows made by hand -----------------------------------------------


def test_the_difference_is_the_mean_over_the_instances_both_methods_finished():
    rows = [
        row("base", 1, "u", "d1", 0.5),
        row("new", 1, "u", "d1", 1.5),  # +1.0
        row("base", 1, "v", "d2", -1.0),
        row("new", 1, "v", "d2", 0.0),  # +1.0
        row("base", 2, "u", "d3", 1.0),
        row("new", 2, "u", "d3", 0.0),  # -1.0
        row("base", 2, "v", "d4", 0.0),
        row("new", 2, "v", "d4", 2.0, status="failed"),  # not finished by new: left out
        row("new", 2, "v", "d5", 2.0),  # base never ran it: left out
        row("base", 1, "u", "d9", 2.0, task="other"),  # another task: its own comparison
    ]
    c = one(compare(groups(rows)), "new", "base")
    assert c.task == "t" and c.instances == 3 and c.unpaired == 2 and c.seeds == 2
    assert c.difference == pytest.approx((1.0 + 1.0 - 1.0) / 3)
    assert c.baseline_mean == pytest.approx((0.5 - 1.0 + 1.0) / 3)
    assert c.method_mean == pytest.approx((1.5 + 0.0 + 0.0) / 3)


def test_the_relative_change_is_the_difference_over_the_baselines_mean_on_those_instances():
    rows = [row("base", s, "u", "d", 0.75) for s in (1, 2)]
    rows += [row("new", s, "u", "d", 1.0) for s in (1, 2)]
    c = one(compare(groups(rows)), "new", "base")
    assert c.relative == pytest.approx(0.25 / 0.75)  # "+33%"
    assert "+33.3%" in markdown([c])


def test_no_relative_change_when_the_baselines_mean_is_not_positive():
    rows = [row("base", s, "u", "d", -0.5) for s in (1, 2)]
    rows += [row("new", s, "u", "d", 1.0) for s in (1, 2)]
    c = one(compare(groups(rows)), "new", "base")
    assert c.difference == pytest.approx(1.5) and math.isnan(c.relative)
    assert "%" not in markdown([c]).split("\n")[-2]


def _noisy(seeds=(1, 2, 3), users=("u", "v", "w"), documents=2):
    rng = random.Random(7)
    rows = []
    for s in seeds:
        for u in users:
            for d in range(documents):
                base = rng.uniform(0, 1)
                rows.append(row("base", s, u, f"{u}{d}", base))
                rows.append(row("new", s, u, f"{u}{d}", base + rng.uniform(-0.2, 0.6)))
    return rows


def test_no_interval_of_the_relative_change_when_a_resample_has_no_positive_baseline_mean():
    rows = [row("base", 1, "u", "d", 1.0), row("base", 2, "u", "d", -0.5)]
    rows += [row("new", 1, "u", "d", 1.5), row("new", 2, "u", "d", 0.0)]
    c = one(compare(groups(rows)), "new", "base")
    assert c.relative == pytest.approx(0.5 / 0.25) and not math.isnan(c.difference_low)
    assert math.isnan(c.relative_low) and c.interval == f"{BOOTSTRAP}; {NO_RELATIVE_INTERVAL}"


def test_the_interval_is_the_same_each_time_and_whatever_the_rows_order():
    rows = _noisy()
    first = one(compare(groups(rows)), "new", "base")
    again = one(compare(groups(rows)), "new", "base")
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    reordered = one(compare(groups(shuffled)), "new", "base")
    assert first.interval == BOOTSTRAP
    assert first.difference_low < first.difference < first.difference_high
    assert first.relative_low < first.relative < first.relative_high
    for other in (again, reordered):
        assert (other.difference_low, other.difference_high, other.relative_low) == (
            first.difference_low,
            first.difference_high,
            first.relative_low,
        )


def test_the_interval_resamples_seeds_and_users_within_them():
    # every user of every seed gains exactly 0.25: no resample can differ
    rows = []
    for s in (1, 2, 3):
        for u in ("u", "v"):
            rows += [row("base", s, u, "d", 0.5 + s / 10), row("new", s, u, "d", 0.75 + s / 10)]
    c = one(compare(groups(rows)), "new", "base")
    assert c.difference_low == pytest.approx(0.25) and c.difference_high == pytest.approx(0.25)
    # seeds that disagree widen it: the interval reaches towards each seed's own difference
    rows = [row("base", s, "u", "d", 0.0) for s in (1, 2, 3)]
    rows += [
        row("new", 1, "u", "d", 0.0),
        row("new", 2, "u", "d", 0.5),
        row("new", 3, "u", "d", 1.0),
    ]
    c = one(compare(groups(rows)), "new", "base")
    assert c.difference == pytest.approx(0.5)
    assert 0.0 <= c.difference_low < 0.5 < c.difference_high <= 1.0


def test_one_seed_gives_no_interval_rather_than_a_made_up_one():
    rows = _noisy(seeds=(1,))
    c = one(compare(groups(rows)), "new", "base")
    assert not math.isnan(c.difference)
    assert math.isnan(c.difference_low) and math.isnan(c.relative_low)
    assert c.interval == "n/a (1 seed)" and c.favours == ""
    table = markdown([c])
    assert "n/a (1 seed)" in table and "[" not in table.split("\n")[-2]
    (line,) = list(csv.DictReader(io.StringIO(comparisons_csv([c]))))
    assert line["difference_low"] == "" and line["interval"] == "n/a (1 seed)"


def test_the_favoured_method_follows_the_metrics_direction():
    rows = []
    for s in (1, 2, 3):
        for u in ("u", "v"):
            rows.append(dict(row("base", s, u, "d", 0.0), levenshtein_norm=0.8))
            rows.append(dict(row("new", s, u, "d", 0.5 + s / 10), levenshtein_norm=0.5 + s / 100))
    comparisons = compare(groups(rows), metrics=["ppcm", "levenshtein_norm"])
    assert one(comparisons, "new", "base", "ppcm").favours == "new"  # higher is better
    assert one(comparisons, "new", "base", "levenshtein_norm").favours == "new"  # lower is
    assert "PPCM ↑" in markdown(comparisons) and "Lev. norm ↓" in markdown(comparisons)


def test_every_pair_by_default_and_only_the_baselines_when_one_is_named():
    assert pairs(["a", "b", "c"]) == [("b", "a"), ("c", "a"), ("c", "b")]
    assert pairs(["a", "b", "c"], "b") == [("a", "b"), ("c", "b")]
    rows = [row(m, s, "u", "d", 0.5) for m in ("a", "b", "c") for s in (1, 2)]
    named = {(c.method, c.baseline) for c in compare(groups(rows), "b")}
    assert named == {("a", "b"), ("c", "b")}


# --- from a run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    (root / "s.toml").write_text(SCENARIO, encoding="utf-8")
    assert main(["run", str(root / "s.toml"), "--out", str(root / "run"), "--progress", "off"]) == 0
    return root / "run"


def _results(run_dir):
    with open(run_dir / "results.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _paired_csv(folder):
    with open(folder / "report_paired.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _hand_difference(method_rows, baseline_rows, metric):
    def key(r):
        return (r["task"], r["framework"], r["seed"], r["user"], r["document_id"])

    a = {key(r): float(r[metric]) for r in method_rows if r["status"] == "ok"}
    b = {key(r): float(r[metric]) for r in baseline_rows if r["status"] == "ok"}
    shared = a.keys() & b.keys()
    return sum(a[k] - b[k] for k in shared) / len(shared), len(shared)


def test_a_run_reports_every_pair_of_its_methods_in_report_md_and_report_paired_csv(run_dir):
    results = _results(run_dir)
    lines = _paired_csv(run_dir)
    assert {(r["method"], r["baseline"]) for r in lines} == {
        ("cipher1", "no_learning"),
        ("oracle", "no_learning"),
        ("oracle", "cipher1"),
    }
    assert {r["metric"] for r in lines} == set(HEADLINE)
    for line in lines:
        expected, shared = _hand_difference(
            [r for r in results if r["method"] == line["method"]],
            [r for r in results if r["method"] == line["baseline"]],
            line["metric"],
        )
        assert float(line["difference"]) == pytest.approx(expected, abs=1e-8)
        assert int(line["instances"]) == shared == 8  # 2 seeds x 2 users x 2 documents
        assert line["interval"] == BOOTSTRAP and line["difference_low"] != ""
    text = (run_dir / "report.md").read_text()
    assert "## Paired comparisons" in text and "| oracle | cipher1 | 8 | 0 |" in text


def test_the_scenarios_report_baseline_and_the_command_lines_choose_the_baseline(
    run_dir, tmp_path, capsys
):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO + '[report]\nbaseline = "cipher1"\n', encoding="utf-8")
    assert load_scenario(scenario).report.baseline == "cipher1"
    # the report table changes the report, never the run: the scenario's digest ignores it
    assert load_scenario(scenario).digest() == load_scenario(run_dir / "scenario.toml").digest()
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r"), "--baseline", "oracle"]) == 0
    assert {(r["method"], r["baseline"]) for r in _paired_csv(tmp_path / "r")} == {
        ("no_learning", "oracle"),
        ("cipher1", "oracle"),
    }
    assert main(["report", str(run_dir), "--out", str(tmp_path / "x"), "--baseline", "prose"]) == 2
    assert "--baseline 'prose': not a method of the report" in capsys.readouterr().err


def test_a_runs_report_compares_with_its_scenarios_baseline_unless_told_otherwise(
    write_scenario, tmp_path
):
    path = write_scenario(SCENARIO + '[report]\nbaseline = "cipher1"\n')
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--progress", "off"]) == 0
    assert {(r["method"], r["baseline"]) for r in _paired_csv(out)} == {
        ("no_learning", "cipher1"),
        ("oracle", "cipher1"),
    }
    assert "Each method against the baseline cipher1" in (out / "report.md").read_text()
    assert main(["report", str(out), "--out", str(tmp_path / "all"), "--baseline", ""]) == 0
    assert len({(r["method"], r["baseline"]) for r in _paired_csv(tmp_path / "all")}) == 3


def test_a_baseline_that_names_no_method_is_a_load_error(write_scenario, tmp_path, capsys):
    path = write_scenario(SCENARIO + '[report]\nbaseline = "cipher"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert "report.baseline" in err and "'cipher' is not a method label" in err
    assert not (tmp_path / "run").exists()


def test_report_of_two_runs_pairs_their_instances_and_labels_methods_by_run(
    run_dir, tmp_path, capsys
):
    other = tmp_path / "other"
    code = main(
        [
            "run",
            str(run_dir / "scenario.toml"),
            "--out",
            str(other),
            "--progress",
            "off",
            "--no-report",
            "--set",
            "models.agent.model=another-model",
            "--set",
            "methods={no_learning={}, oracle={}}",
        ]
    )
    assert code == 0
    out = tmp_path / "both"
    assert (
        main(
            [
                "report",
                str(run_dir),
                str(other),
                "--out",
                out.as_posix(),
                "--baseline",
                "run/oracle",
            ]
        )
        == 0
    )
    lines = _paired_csv(out)
    assert {r["method"] for r in lines} == {
        "run/no_learning",
        "run/cipher1",
        "other/no_learning",
        "other/oracle",
    }
    assert {r["baseline"] for r in lines} == {"run/oracle"}
    mine, theirs = _results(run_dir), _results(other)
    across = [r for r in lines if r["method"] == "other/oracle"]
    assert across
    for line in across:
        expected, shared = _hand_difference(
            [r for r in theirs if r["method"] == "oracle"],
            [r for r in mine if r["method"] == "oracle"],
            line["metric"],
        )
        assert int(line["instances"]) == shared == 8 and int(line["unpaired"]) == 0
        assert float(line["difference"]) == pytest.approx(expected, abs=1e-8)
    assert "| other/oracle | run/oracle | 8 | 0 |" in capsys.readouterr().out
