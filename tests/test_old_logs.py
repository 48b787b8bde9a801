"""A run folder written by an earlier version (main at f511408, before the per-method and
per-backend settings Structs) still replays, resumes and reports; the log of a run now
holds its resolved scenario and its personas."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import anyio
import pytest

from prose_sim.config import RunOptions
from prose_sim.errors import UsageError
from prose_sim.events import RunStarted
from prose_sim.report.build import Report
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.replay import replay_run
from prose_sim.runtime.resume import load_prior
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario, scenario_catalog

OLD_RUN = Path(__file__).parent / "data" / "old_run_f511408"


@pytest.fixture
def old_run(tmp_path) -> Path:
    copy = tmp_path / "old"
    shutil.copytree(OLD_RUN, copy)
    return copy


def test_an_old_log_replays_to_the_same_results(old_run, tmp_path):
    outcome = anyio.run(lambda: replay_run(old_run, tmp_path / "replay", progress="off"))
    assert outcome.identical and outcome.unrecorded_calls == 0, outcome.divergence
    assert (tmp_path / "replay" / "results.csv").read_bytes() == (
        OLD_RUN / "results.csv"
    ).read_bytes()


def test_an_old_run_folder_is_read_as_unedited_and_an_edit_is_still_refused(old_run):
    prior = load_prior(old_run)  # its digest is the flat tables' one
    assert prior.started is not None and prior.scenario.name == "old_log"
    path = old_run / "scenario.toml"
    path.write_text(path.read_text().replace("seeds = [\n    7,", "seeds = [\n    8,"))
    with pytest.raises(UsageError, match="was edited after the run began"):
        load_prior(old_run)


def test_an_old_run_folder_reports(old_run, tmp_path):
    Report([old_run]).write(tmp_path / "report")
    with open(tmp_path / "report" / "report.csv", encoding="utf-8") as f:
        methods = {row["method"] for row in csv.DictReader(f)}
    assert {"no_learning", "cipher1", "prose_sc"} <= methods


def test_a_runs_log_holds_its_resolved_scenario_and_personas(tmp_path):
    scenario = load_scenario(OLD_RUN / "ORIGIN.toml")
    out = tmp_path / "run"
    anyio.run(lambda: execute(prepare(scenario, out, RunOptions(progress="off"))))
    started = next(e for e in RunFolder(out).events() if isinstance(e, RunStarted))
    assert started.scenario == RunFolder(out).scenario_tables()
    assert [p["name"] for p in started.personas] == ["ampere"]
    assert started.personas[0]["components"]


def test_preparing_a_run_writes_nothing(tmp_path):
    scenario = load_scenario(OLD_RUN / "ORIGIN.toml")
    out = tmp_path / "new" / "run"
    prepared = prepare(scenario, out, RunOptions(progress="off"))
    assert len(prepared.all_plans) == 4 and not (tmp_path / "new").exists()  # 4 methods, 1 user


def test_a_retrieval_model_that_cannot_load_stops_the_run_before_its_folder_is_written(
    write_scenario, tmp_path
):
    text = (
        (OLD_RUN / "ORIGIN.toml")
        .read_text()
        .replace("[methods.cipher1]", '[methods.cipher1]\nretrieval_mode = "cosine_sim"')
    )
    path = write_scenario(text + '\n[retrieval]\nmodel = "/nonexistent/encoder"\n')
    with pytest.raises(
        UsageError, match=r"retrieval\.model '/nonexistent/encoder' cannot be loaded"
    ):
        prepare(load_scenario(path), tmp_path / "run", RunOptions(progress="off"))
    assert not (tmp_path / "run").exists()


def test_a_runs_log_alone_is_enough_for_its_report(tmp_path):
    scenario = load_scenario(OLD_RUN / "ORIGIN.toml", ["metrics.judge_parsing=released"])
    out = tmp_path / "run"
    anyio.run(lambda: execute(prepare(scenario, out, RunOptions(progress="off"))))
    Report([out]).write(tmp_path / "with")
    (out / "scenario.toml").unlink()
    (out / "results.csv").unlink()
    (out / "summary.json").unlink()
    report = Report([out])
    assert report.judge_parsings == {"released"}  # read from the log's RunStarted
    report.write(tmp_path / "without")
    for name in ("report.csv", "report.md"):
        assert (tmp_path / "with" / name).read_bytes() == (tmp_path / "without" / name).read_bytes()


def test_the_viewer_takes_the_users_true_components_from_the_log(tmp_path):
    from prose_sim.view.render import _true_components

    scenario = load_scenario(OLD_RUN / "ORIGIN.toml")
    out = tmp_path / "run"
    anyio.run(lambda: execute(prepare(scenario, out, RunOptions(progress="off"))))
    (out / "scenario.toml").unlink()  # the world is not rebuilt: the log has the personas
    components = _true_components(out)
    assert components is not None
    expected = scenario_catalog(scenario).get("plume", "email_writing", "ampere").components
    assert components("plume", "email_writing", "ampere") == tuple(expected)
    assert components("plume", "email_writing", "nobody") is None


def test_the_viewer_loads_an_old_runs_personas_from_its_scenario(old_run):
    from prose_sim.view.render import _true_components

    components = _true_components(old_run)
    assert components is not None and components("plume", "email_writing", "ampere")
