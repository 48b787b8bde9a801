"""``run --resume RUN_DIR --extend``: a finished run grown to a larger scenario in its folder,
only what is new asked of a model, the results those of the larger scenario run from scratch."""

from __future__ import annotations

import msgspec
import pytest

from prose_sim.cli import main
from prose_sim.events import ModelResponded, RunFinished, RunResumed, RunStarted
from prose_sim.runfolder import RunFolder

SMALL = """
name = "small"
seeds = [1]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.cipher1]
[metrics]
bertscore = ""
"""


def run(*args) -> int:
    return main(["run", *map(str, args), "--progress", "off", "--no-report"])


@pytest.fixture
def small(tmp_path, write_scenario):
    """A finished run of SMALL."""
    folder = tmp_path / "run"
    assert run(write_scenario(SMALL, "small.toml"), "--out", folder) == 0
    return folder


def from_scratch(tmp_path, write_scenario, *overrides) -> bytes:
    folder = tmp_path / "scratch"
    args = [a for o in overrides for a in ("--set", o)]
    assert run(write_scenario(SMALL, "scratch.toml"), "--out", folder, *args) == 0
    return RunFolder(folder).results()


def calls_made(capsys) -> int:
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("resumed:"))
    return int(line.split("; ")[1].split()[0].replace(",", ""))


def answers(folder) -> list[ModelResponded]:
    return [e for e in RunFolder(folder).events() if isinstance(e, ModelResponded)]


@pytest.mark.parametrize(
    "growth",
    [
        ["seeds=[1, 2]"],
        ['tasks.summarization.personas=["cnn_dailymail", "imdb", "wikipedia"]'],
        ["methods.icl={}"],
        ['tasks.email_writing={personas=["ampere"]}'],
        ["demonstrations_per_user=3"],
        ["seeds=[1, 2]", "demonstrations_per_user=3", "methods.icl={}"],
    ],
    ids=["seed", "user", "method", "task", "demonstrations", "all-at-once"],
)
def test_an_extended_run_equals_the_larger_scenario_run_from_scratch(
    small, tmp_path, write_scenario, growth
):
    args = [a for o in growth for a in ("--set", o)]
    assert run("--resume", small, "--extend", *args) == 0
    assert RunFolder(small).results() == from_scratch(tmp_path, write_scenario, *growth)


def test_a_new_seed_asks_only_the_new_seeds_calls(small, tmp_path, write_scenario, capsys):
    before = len(answers(small))
    capsys.readouterr()
    assert run("--resume", small, "--extend", "--set", "seeds=[1, 2]") == 0
    made = calls_made(capsys)
    new_seed = [a for a in answers(small) if a.episode_id.split("/")[3] == "2"]
    assert made == len(new_seed) > 0
    assert len(answers(small)) == before + made  # the first seed's answers kept, not asked again


def test_more_demonstrations_continue_an_episode_its_earlier_answers_from_the_log(small, capsys):
    before = len(answers(small))
    capsys.readouterr()
    assert run("--resume", small, "--extend", "--set", "demonstrations_per_user=3") == 0
    err = capsys.readouterr().err
    served = int(err.split("model calls made, ")[1].split()[0].replace(",", ""))
    assert served == before  # every answer already given was served, none asked again


def test_the_log_records_the_larger_scenario_and_what_it_grew_from(small):
    old = RunFolder(small).started()
    assert old is not None
    assert run("--resume", small, "--extend", "--set", "seeds=[1, 2]") == 0
    events = list(RunFolder(small).events())
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.extended_from == [old.scenario_digest]
    assert started.scenario["seeds"] == [1, 2] and started.episodes == 8
    assert sum(isinstance(e, RunStarted) for e in events) == 1
    resumed = [e for e in events if isinstance(e, RunResumed)]
    assert [r.extended for r in resumed] == ["seeds 2"]
    assert RunFolder(small).load_run().scenario.seeds == [1, 2]  # scenario.toml follows


def test_an_extended_run_replays_identically(small, tmp_path, capsys):
    assert run("--resume", small, "--extend", "--set", "seeds=[1, 2]") == 0
    assert (
        main(["replay", str(small), "--out", str(tmp_path / "replayed"), "--progress", "off"]) == 0
    )
    assert "identical" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("seeds=[2]", "seeds: [1] dropped"),
        ("models.agent.temperature=0.5", "models.agent.temperature"),
        ('methods.cipher1.retrieval_mode="cosine_sim"', "methods.cipher1.retrieval_mode"),
        ('tasks.summarization.personas=["imdb"]', "tasks.summarization.personas"),
        ("demonstrations_per_user=1", "demonstrations_per_user"),
    ],
)
def test_a_change_that_is_not_an_addition_is_refused_naming_the_key(small, capsys, change, named):
    log = RunFolder(small).log_path.read_bytes()
    assert run("--resume", small, "--extend", "--set", change) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1
    assert RunFolder(small).log_path.read_bytes() == log  # nothing written


def test_an_extension_that_adds_nothing_says_so(small, capsys):
    assert run("--resume", small, "--extend") == 2
    assert "adds nothing" in capsys.readouterr().err


def test_an_extension_interrupted_before_its_scenario_file_is_written_resumes(
    small, tmp_path, write_scenario
):
    """The log is rewritten first, then scenario.toml: a crash between the two leaves the
    older scenario file beside the larger scenario's log, which resume reads and repairs."""
    folder = RunFolder(small)
    old_scenario = folder.scenario_path.read_bytes()
    assert run("--resume", small, "--extend", "--set", "seeds=[1, 2]") == 0
    events, _ = folder.read_log()
    # as the extension left it right after its log rewrite: the larger RunStarted, the
    # first run's episodes, the older scenario.toml
    kept = [e for e in events if e.episode_id == "" or e.episode_id.split("/")[3] == "1"]
    kept = [e for e in kept if not isinstance(e, RunResumed | RunFinished)]
    folder.rewrite_log(kept)
    folder.scenario_path.write_bytes(old_scenario)
    folder.summary_path.unlink()
    assert run("--resume", small) == 0
    assert folder.load_run().scenario.seeds == [1, 2]
    assert folder.results() == from_scratch(tmp_path, write_scenario, "seeds=[1, 2]")


def test_extend_needs_resume(tmp_path, write_scenario, capsys):
    path = write_scenario(SMALL)
    assert run(path, "--extend", path, "--out", tmp_path / "x") == 2
    assert "--resume" in capsys.readouterr().err


def test_the_run_started_event_still_decodes_without_the_new_fields():
    """Logs written before extensions lack extended_from and derived_from."""
    raw = b'{"kind":"run_started","scenario_name":"s","scenario_digest":"d","episodes":1,"version":"0"}'
    event = msgspec.json.decode(raw, type=RunStarted)
    assert event.extended_from == [] and event.derived_from == ""
