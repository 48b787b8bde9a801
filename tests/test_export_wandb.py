"""`export wandb`: a scripted run logged offline, then read back from wandb's own files."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from prose_sim.cli import main
from prose_sim.extras import install_command

SCENARIO = """
name = "exported"
seeds = [1235, 9328]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["imdb"]
[methods.no_learning]
[methods.oracle]
[metrics]
bertscore = ""
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    (tmp / "s.toml").write_text(SCENARIO, encoding="utf-8")
    assert main(["run", str(tmp / "s.toml"), "--out", str(tmp / "run"), "--progress", "off"]) == 0
    return tmp / "run"


def test_an_offline_export_holds_config_instances_report_plots_and_totals(
    run_dir, tmp_path, monkeypatch, capsys
):
    pytest.importorskip(
        "wandb",
        reason="wandb is not installed (pip install 'prose-sim[wandb]'); export test skipped",
    )
    from tests.wandb_offline import read_run

    monkeypatch.setenv(
        "WANDB_MODE", "online"
    )  # the shell's mode does not override offline-by-default
    assert main(["export", "wandb", str(run_dir), "--dir", str(tmp_path)]) == 0
    assert "upload it with: wandb sync" in capsys.readouterr().out
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(offline)
    assert run["run"].display_name == run_dir.name and run["run"].project == "prose-sim"
    assert run["config"]["name"] == "exported" and run["config"]["seeds"] == [1235, 9328]

    with open(run_dir / "results.csv", encoding="utf-8") as f:
        results = list(csv.DictReader(f))
    history = run["history"]
    assert (
        history["instances/_type"] == "table-file"
        and history["instances/nrows"] == len(results) == 8
    )
    table = json.loads((offline / "files" / history["instances/path"]).read_text(encoding="utf-8"))
    column = table["columns"].index("ppcm")
    assert [row[column] for row in table["data"]] == [float(r["ppcm"]) for r in results]
    assert history["report/nrows"] == 2  # one report row per method
    assert {k.split("/")[1] for k in history if k.startswith("plots/")} == {
        "ppcm_by_method",
        "ppcm_learning_curve",
        "cost_vs_ppcm",
    }
    totals = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert run["summary"]["model_calls"] == totals["model_calls"]
    assert run["summary"]["status"] == "completed"


def test_without_wandb_installed_the_export_says_how_to_get_it(run_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert main(["export", "wandb", str(run_dir)]) == 2
    assert f"needs the wandb extra: {install_command('wandb')}" in capsys.readouterr().err


def test_a_folder_without_a_run_is_refused_in_one_line(tmp_path, capsys):
    assert main(["export", "wandb", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run folder" in err[0]
