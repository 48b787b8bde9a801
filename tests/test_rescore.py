"""``rescore``: a finished run judged and measured again, its simulation served from its log."""

from __future__ import annotations

import csv
import io

import anyio
import pytest
from test_extend import SMALL

from prose_sim.cli import main
from prose_sim.eventlog import read_events
from prose_sim.events import ModelResponded, RunStarted
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.rescore import SIMULATION_COLUMNS, rescore_run, simulation_difference
from prose_sim.templating import template_dir

SCENARIO = SMALL.replace("seeds = [1]", "seeds = [1, 2]")  # two seeds, two methods

# what a changed judge may change in results.csv: its verdicts' metrics, its name and the
# whole instance's accounting (which counts the judge's calls and tokens)
JUDGED = {
    "ppcm",
    "fpm",
    "ppcm_fpm_mean",
    "preference_similarity",
    "judge_unparsed",
    "judge_model",
    "calls",
    "input_tokens",
    "output_tokens",
    "parse_failures",
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A finished scripted run with a prompt folder of its own."""
    root = tmp_path_factory.mktemp("rescore")
    (root / "wording").mkdir()
    for name in ("judge_ppcm", "draft"):
        text = (template_dir() / f"{name}.j2").read_text(encoding="utf-8")
        (root / "wording" / f"{name}.j2").write_text(text, encoding="utf-8")
    path = root / "s.toml"
    path.write_text(SCENARIO + '[prompts]\ndir = "wording"\n', encoding="utf-8")
    run = root / "run"
    assert main(["run", str(path), "--out", str(run), "--progress", "off", "--no-report"]) == 0
    return run


def rows(run) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(RunFolder(run).results().decode())))


def differing_columns(a, b) -> set[str]:
    return {k for x, y in zip(rows(a), rows(b), strict=True) for k in x if x[k] != y[k]}


def answers(run, judge: bool) -> int:
    return sum(
        1
        for e in read_events(RunFolder(run).log_path)
        if isinstance(e, ModelResponded) and (e.role == "judge") == judge
    )


def rescore(recorded, out, *overrides):
    return anyio.run(lambda: rescore_run(recorded, out, overrides, progress="off"))


def test_a_rescore_with_nothing_changed_reproduces_results_byte_for_byte(recorded, tmp_path):
    out = tmp_path / "again"
    result = rescore(recorded, out)
    assert result.faithful and result.changes == []
    assert RunFolder(out).results() == RunFolder(recorded).results()


def test_a_rescore_calls_only_the_judge_every_other_answer_comes_from_the_log(recorded, tmp_path):
    result = rescore(recorded, tmp_path / "again")
    assert result.unrecorded_calls == 0
    assert result.answers_from_log == answers(recorded, judge=False) > 0
    assert result.judge_calls == answers(recorded, judge=True) > 0


def test_a_changed_judge_model_changes_only_the_judges_columns(recorded, tmp_path):
    out = tmp_path / "judge-b"
    result = rescore(recorded, out, "models.judge.model=judge-b")
    assert result.faithful
    assert result.changes == ["models.judge.model: '' in the run, 'judge-b' now"]
    changed = differing_columns(recorded, out)
    assert {"judge_model", "ppcm"} <= changed <= JUDGED
    assert not changed & set(SIMULATION_COLUMNS)


def test_the_rescored_run_says_which_run_it_was_served_from(recorded, tmp_path):
    out = tmp_path / "again"
    rescore(recorded, out)
    started = RunFolder(out).started()
    origin = RunFolder(recorded).started()
    assert isinstance(started, RunStarted) and origin is not None
    assert started.derived_from == f"{recorded.name} {origin.scenario_digest}"


def test_a_rescore_without_the_judge_asks_no_model(recorded, tmp_path):
    out = tmp_path / "nojudge"
    result = rescore(recorded, out, "metrics.judge=false")
    assert result.faithful and result.judge_calls == 0
    assert all(row.get("ppcm", "") == "" for row in rows(out))
    assert all(row["levenshtein"] != "" for row in rows(out))


def test_an_override_that_changes_the_simulation_is_refused_naming_it(recorded, tmp_path, capsys):
    out = tmp_path / "refused"
    overrides = ["--set", "seeds=[1]", "--set", "models.agent.temperature=0.5"]
    code = main(["rescore", str(recorded), "--out", str(out), *overrides])
    err = capsys.readouterr().err
    assert code == 2
    assert "models.agent.temperature" in err and "seeds" in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_a_changed_judge_template_is_rescored(recorded, tmp_path):
    folder = tmp_path / "judge_wording"
    folder.mkdir()
    for path in (recorded.parent / "wording").iterdir():
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    judge = folder / "judge_ppcm.j2"
    judge.write_text("Take care.\n" + judge.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "rejudged"
    result = rescore(recorded, out, f"prompts.dir={folder}")
    assert result.faithful and result.unrecorded_calls == 0
    assert "ppcm" in differing_columns(recorded, out)


def test_a_changed_writer_template_is_refused_naming_it(recorded, tmp_path, capsys):
    folder = tmp_path / "draft_wording"
    folder.mkdir()
    (folder / "draft.j2").write_text("Write it.\n", encoding="utf-8")
    out = tmp_path / "refused"
    code = main(["rescore", str(recorded), "--out", str(out), "--set", f"prompts.dir={folder}"])
    assert code == 2
    assert "'draft'" in capsys.readouterr().err
    assert not out.exists()


def test_a_simulation_column_that_differs_is_named():
    header = ",".join(["task", "framework", "method", "seed", "user", "instance", "accepted"])
    a = f"{header}\ns,plume,m,1,u,0,1.0\n".encode()
    b = f"{header}\ns,plume,m,1,u,0,0.0\n".encode()
    assert "accepted" in simulation_difference(a, b)
    assert simulation_difference(a, a) == ""


def test_an_unfinished_run_is_refused(tmp_path, write_scenario, capsys):
    run = tmp_path / "run"
    assert main(["run", str(write_scenario(SCENARIO)), "--out", str(run), "--no-report"]) == 0
    RunFolder(run).summary_path.unlink()  # as a run stopped before its end leaves it
    (run / "events.jsonl").write_text(
        (run / "events.jsonl").read_text().rsplit("\n", 2)[0] + "\n"  # its end not logged
    )
    assert main(["rescore", str(run), "--out", str(tmp_path / "out")]) == 2
    assert "did not finish" in capsys.readouterr().err


def test_a_simulating_request_the_log_lacks_is_counted_and_named(recorded, tmp_path):
    import shutil

    copy = tmp_path / "lacking"
    shutil.copytree(recorded, copy)
    folder = RunFolder(copy)
    events, _ = folder.read_log()
    lost = next(e for e in events if isinstance(e, ModelResponded) and e.role == "user")
    folder.rewrite_log([e for e in events if e is not lost])  # the log lacks that answer
    result = rescore(copy, tmp_path / "out")
    assert result.unrecorded_calls >= 1 and not result.faithful
    assert lost.episode_id in result.difference
