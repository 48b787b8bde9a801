"""The report: tables, judge Q&A and plots, computed from event logs alone."""

from __future__ import annotations

import csv
import io
import math

import pytest
from conftest import MINIMAL

from prose_sim.cli import main
from prose_sim.eventlog import read_events
from prose_sim.events import JudgeVerdict
from prose_sim.report.plots import PLOTS
from prose_sim.report.tables import summarize

# the one end-to-end run with the real BERTScore model (the embedded MiniLM)
pytestmark = pytest.mark.real_bertscore

TWO_SEEDS = MINIMAL.replace("seeds = [1235]", "seeds = [1, 2]")


def run(write_scenario, out, *extra):
    code = main(
        ["run", str(write_scenario(TWO_SEEDS)), "--out", str(out), "--progress", "off", *extra]
    )
    assert code == 0


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One scripted run with the judge, BERTScore (embedded MiniLM) and checkers on."""
    root = tmp_path_factory.mktemp("report")
    scenario = root / "s.toml"
    scenario.write_text(TWO_SEEDS, encoding="utf-8")
    assert main(["run", str(scenario), "--out", str(root / "run"), "--progress", "off"]) == 0
    return root / "run"


def test_run_writes_the_report_tables_qa_and_plots(finished):
    for name in ("report.md", "report.csv", "judge_qa.csv", *PLOTS):
        assert (finished / name).stat().st_size > 0, name
    text = (finished / "report.md").read_text()
    assert "## summarization (plume)" in text
    for title in (
        "PPCM",
        "FPM",
        "Lev. norm",
        "BERTScore",
        "Pref. acc.",
        "Verifiable",
        "Calls/demo",
    ):
        assert title in text
    assert "| oracle |" in text and "| no_learning |" in text
    assert 'no inferred preferences (no_learning, icl) is scored on the string "None"' in text


def test_plots_are_valid_non_empty_images(finished):
    import matplotlib.image

    for name in PLOTS:
        assert (finished / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(finished / name)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.std() > 0  # not a blank canvas


def test_the_report_from_the_log_later_is_identical(finished, tmp_path, capsys):
    assert main(["report", str(finished), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (finished / "report.md").read_text()
    for name in ("report.md", "report.csv", "judge_qa.csv"):
        assert (tmp_path / name).read_bytes() == (finished / name).read_bytes(), name


def test_judge_qa_has_one_row_per_verdict_with_question_and_answer(finished):
    verdicts = [e for e in read_events(finished / "events.jsonl") if isinstance(e, JudgeVerdict)]
    rows = list(csv.DictReader(io.StringIO((finished / "judge_qa.csv").read_text())))
    assert len(rows) == len(verdicts) > 0
    assert all(r["question"] and r["answer"] for r in rows)
    assert {r["metric"] for r in rows} >= {"ppcm", "fpm"}
    ppcm = [r for r in rows if r["metric"] == "ppcm"]
    assert all(r["component"] in r["question"] for r in ppcm)


def test_report_csv_has_mean_and_standard_error_columns(finished):
    rows = list(csv.DictReader(io.StringIO((finished / "report.csv").read_text())))
    assert {r["method"] for r in rows} == {"no_learning", "oracle"}
    for r in rows:
        assert r["seeds"] == "2"
        assert -2 <= float(r["ppcm_mean"]) <= 2 and float(r["ppcm_se"]) >= 0
        assert 0 <= float(r["bertscore_mean"]) <= 1


def test_oracle_preferences_are_always_attributed_to_their_user(finished):
    rows = list(csv.DictReader(io.StringIO((finished / "report.csv").read_text())))
    oracle = next(r for r in rows if r["method"] == "oracle")
    assert float(oracle["preference_accuracy_mean"]) == 1.0


def test_several_runs_combine_into_one_report(finished, write_scenario, tmp_path, capsys):
    other = tmp_path / "other"
    run(write_scenario, other, "--set", "models.agent.model=another-model", "--no-report")
    assert not (other / "report.md").exists()
    assert main(["report", str(finished), str(other)]) == 2  # where would it go?
    assert "--out" in capsys.readouterr().err
    assert main(["report", str(finished), str(other), "--out", str(tmp_path / "both")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "both" / "report.csv").read_text())))
    assert {r["agent_model"] for r in rows} == {"scripted", "another-model"}


def test_a_missing_run_folder_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def _row(seed, ppcm, status="ok", calls=2):
    return dict(
        task="t",
        framework="plume",
        method="m",
        agent_model="a",
        seed=seed,
        status=status,
        ppcm=ppcm,
        input_tokens=10,
        output_tokens=5,
        calls=calls,
        demonstration=0,
    )


def test_cells_are_means_over_seeds_of_per_seed_means_with_standard_error():
    rows = [
        _row(1, 1.0),
        _row(1, 0.0),
        _row(2, 2.0),
        _row(2, 2.0),
        _row(2, -2.0, status="failed", calls=4),
    ]
    [s] = summarize(rows)
    assert s.means["ppcm"] == pytest.approx(
        (0.5 + 2.0) / 2
    )  # the failed instance's quality is left out
    assert s.errors["ppcm"] == pytest.approx(
        math.sqrt(((0.5 - 1.25) ** 2 + (2 - 1.25) ** 2) / 1) / math.sqrt(2)
    )
    assert s.means["calls"] == pytest.approx(
        (2 + (2 + 2 + 4) / 3) / 2
    )  # cost counts every instance
    assert s.failed == 1 and s.seeds == 2
