"""prose_sim.open_run: a run folder read from Python, for notebooks."""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import prose_sim
from prose_sim.cli import main
from prose_sim.config import Scenario
from prose_sim.errors import UsageError
from prose_sim.events import EVENT_TYPES, JudgeVerdict, RunStarted
from prose_sim.runfolder import RunFolder

SCENARIO = """
name = "notebook"
seeds = [1, 2]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.oracle]
[report]
baseline = "no_learning"
[metrics]
bertscore = ""
"""
DOCS = Path(__file__).parent.parent / "docs" / "notebooks.md"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebook")
    (root / "s.toml").write_text(SCENARIO, encoding="utf-8")
    out = root / "runs" / "methods"
    assert main(["run", str(root / "s.toml"), "--out", str(out), "--progress", "off"]) == 0
    return out


def _csv(run_dir):
    with open(run_dir / "results.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_open_run_gives_the_rows_of_results_csv_with_numbers_as_numbers(run_dir):
    rows = prose_sim.open_run(run_dir).result_rows()
    written = _csv(run_dir)
    assert len(rows) == len(written) == 16 and list(rows[0]) == list(written[0])
    for row, line in zip(rows, written, strict=True):
        for column, cell in line.items():
            value = row[column]
            if isinstance(value, str):
                assert value == cell
            elif cell == "":
                assert math.isnan(value)
            else:
                assert value == float(cell)
    assert isinstance(rows[0]["seed"], int) and isinstance(rows[0]["ppcm"], float)
    assert isinstance(rows[0]["document_id"], str)


def test_open_run_gives_a_dataframe_when_pandas_is_installed(run_dir):
    pandas = pytest.importorskip("pandas")
    frame = prose_sim.open_run(run_dir).results
    assert isinstance(frame, pandas.DataFrame)
    rows = prose_sim.open_run(run_dir).result_rows()
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows)
    for column in frame.columns:
        for value, row in zip(frame[column].tolist(), rows, strict=True):
            assert value == row[column] or (_nan(value) and _nan(row[column])), column


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def test_open_run_gives_a_list_of_dicts_without_pandas(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    run = prose_sim.open_run(run_dir)
    assert run.results == run.result_rows()


def test_open_run_gives_the_scenario_and_the_summary(run_dir):
    run = prose_sim.open_run(run_dir)
    assert isinstance(run.scenario, Scenario)
    assert run.scenario.name == "notebook" and list(run.scenario.methods) == [
        "no_learning",
        "oracle",
    ]
    assert run.scenario.report.baseline == "no_learning"
    assert run.scenario.digest() == RunFolder(run_dir).started().scenario_digest
    assert run.summary == RunFolder(run_dir).summary() and run.summary["status"] == "completed"


def test_open_run_iterates_the_typed_events_of_the_log(run_dir):
    run = prose_sim.open_run(run_dir)
    events = list(run.events())
    assert events == list(RunFolder(run_dir).events())
    assert isinstance(events[0], RunStarted) and all(isinstance(e, EVENT_TYPES) for e in events)
    verdicts = list(run.events(JudgeVerdict))
    assert verdicts == [e for e in events if isinstance(e, JudgeVerdict)] and verdicts


def test_open_run_refuses_what_is_not_a_run_folder(tmp_path):
    with pytest.raises(UsageError, match="no such run folder"):
        prose_sim.open_run(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="not a prose_sim run folder"):
        prose_sim.open_run(tmp_path)


def test_importing_prose_sim_does_not_import_open_run_until_it_is_used():
    code = (
        "import sys, prose_sim\n"
        "before = sorted(m for m in sys.modules if m.startswith('prose_sim'))\n"
        "prose_sim.open_run\n"
        "print(before, 'prose_sim.api' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['prose_sim'] True"


def test_the_documentations_example_runs_as_written(run_dir, monkeypatch, capsys):
    (snippet,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(run_dir.parent.parent)  # where runs/methods is
    exec(compile(snippet, str(DOCS), "exec"), {})
    first, mean_ppcm = capsys.readouterr().out.splitlines()
    assert first == "notebook ['no_learning', 'oracle'] completed"
    ok = [r for r in _csv(run_dir) if r["status"] == "ok"]
    assert float(mean_ppcm) == pytest.approx(sum(float(r["ppcm"]) for r in ok) / len(ok))
