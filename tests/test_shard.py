"""Sharding a grid and merging the shards: the same results as one unsharded run."""

from __future__ import annotations

import anyio
import pytest
from conftest import MINIMAL

from prose_sim.cli import main
from prose_sim.config import RunOptions
from prose_sim.errors import UsageError
from prose_sim.eventlog import read_events
from prose_sim.events import EpisodeStarted
from prose_sim.runtime.plan import expand, parse_shard, select_shard
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_run, load_scenario

GRID = MINIMAL.replace("seeds = [1235]", "seeds = [1, 2, 3]").replace(
    "[methods.oracle]", '[methods.oracle]\n[methods.prose]\n[metrics]\nbertscore = ""\n'
)


def run(*args) -> int:
    return main(
        [*map(str, args), "--progress", "off"] if args[0] == "run" else list(map(str, args))
    )


def test_shards_are_disjoint_and_cover_the_grid(write_scenario):
    plans = expand(load_scenario(write_scenario(GRID)))
    parts = [select_shard(plans, (k, 3)) for k in (1, 2, 3)]
    ids = [p.episode_id for part in parts for p in part]
    assert sorted(ids) == sorted(p.episode_id for p in plans) and len(set(ids)) == len(ids)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_three_shards_merged_equal_the_unsharded_run(write_scenario, tmp_path):
    scenario = write_scenario(GRID)
    assert run("run", scenario, "--out", tmp_path / "whole", "--no-report") == 0
    for k in (1, 2, 3):
        assert (
            run("run", scenario, "--out", tmp_path / f"s{k}", "--shard", f"{k}/3", "--no-report")
            == 0
        )
        started = [
            e
            for e in read_events(tmp_path / f"s{k}" / "events.jsonl")
            if isinstance(e, EpisodeStarted)
        ]
        assert 0 < len(started) < 18
    assert (
        run(
            "merge", tmp_path / "s2", tmp_path / "s1", tmp_path / "s3", "--out", tmp_path / "merged"
        )
        == 0
    )
    whole = (tmp_path / "whole" / "results.csv").read_bytes()
    assert (tmp_path / "merged" / "results.csv").read_bytes() == whole
    # the merged folder is a run like any other: report and replay accept it
    assert run("report", tmp_path / "merged") == 0
    assert (tmp_path / "merged" / "report.md").exists()
    assert run("replay", tmp_path / "merged", "--progress", "off") == 0
    # and a shard replays on its own
    assert run("replay", tmp_path / "s2", "--progress", "off") == 0


def test_merge_refuses_an_incomplete_or_mixed_set(write_scenario, tmp_path, capsys):
    scenario = write_scenario(GRID)
    for k in (1, 2):
        assert (
            run("run", scenario, "--out", tmp_path / f"s{k}", "--shard", f"{k}/3", "--no-report")
            == 0
        )
    assert run("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m") == 2
    assert "missing 3" in capsys.readouterr().err
    assert run("run", scenario, "--out", tmp_path / "whole", "--no-report") == 0
    assert run("merge", tmp_path / "s1", tmp_path / "whole", "--out", tmp_path / "m2") == 2
    assert "not a shard" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1-3", "2/"])
def test_a_bad_shard_is_a_clear_error(text):
    with pytest.raises(UsageError):
        parse_shard(text)


# 102 episodes of one instance each: 100 shards of one or two episodes
MANY = """
name = "many"
seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
demonstrations_per_user = 1
[tasks.summarization]
personas = ["cnn_dailymail", "imdb", "wikipedia"]
[methods.no_learning]
[methods.cipher1]
[metrics]
bertscore = ""
"""


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    """A grid run whole (the command) and as 100 shards (the three phases from Python, the
    scenario loaded once: a command's run collects the test process's garbage each time)."""
    root = tmp_path_factory.mktemp("hundred")
    scenario = root / "many.toml"
    scenario.write_text(MANY, encoding="utf-8")
    assert run("run", scenario, "--out", root / "whole", "--no-report") == 0
    grid = load_run(scenario)
    for k in range(1, 101):
        options = RunOptions(shard=(k, 100), progress="off")
        outcome = anyio.run(lambda: execute(prepare(grid, root / f"s{k}", options)))  # noqa: B023
        assert outcome.status == "completed"
    return root


def shards(root, ks):
    return [root / f"s{k}" for k in ks]


def test_a_hundred_shards_merge_into_the_unsharded_runs_results(hundred, capsys):
    out = hundred / "merged"
    assert run("merge", *shards(hundred, range(100, 0, -1)), "--out", out) == 0
    assert (out / "results.csv").read_bytes() == (hundred / "whole" / "results.csv").read_bytes()
    assert "merged 100 shards: 102 episodes" in capsys.readouterr().out


def test_the_merged_run_is_a_run_that_view_rescore_and_replay_accept(hundred, tmp_path):
    out = tmp_path / "merged"
    assert run("merge", *shards(hundred, range(1, 101)), "--out", out) == 0
    assert run("view", out, "--out", tmp_path / "view.html") == 0
    assert run("rescore", out, "--out", tmp_path / "rescored", "--progress", "off") == 0
    assert (tmp_path / "rescored" / "results.csv").read_bytes() == (
        out / "results.csv"
    ).read_bytes()
    assert run("replay", out, "--out", tmp_path / "replayed", "--progress", "off") == 0


def test_merge_names_the_missing_shards_and_those_given_twice(hundred, capsys, tmp_path):
    given = [k for k in range(1, 101) if k not in (7, 8, 9, 50)] + [3]
    assert run("merge", *shards(hundred, given), "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "missing 7-9, 50" in err
    assert f"3/100 given twice ({hundred / 's3'}, {hundred / 's3'})" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "m").exists()  # nothing written


def test_merge_refuses_an_unfinished_shard_naming_it(hundred, tmp_path, capsys):
    import shutil

    torn = tmp_path / "s5"
    shutil.copytree(hundred / "s5", torn)
    log = torn / "events.jsonl"
    log.write_bytes(log.read_bytes().rsplit(b"\n", 2)[0] + b"\n")  # its end not logged
    given = [*shards(hundred, [k for k in range(1, 101) if k != 5]), torn]
    assert run("merge", *given, "--out", tmp_path / "m") == 2
    assert f"{torn}: the shard did not finish" in capsys.readouterr().err


def test_merge_refuses_an_edited_shard_scenario_naming_it(hundred, tmp_path, capsys):
    import shutil

    edited = tmp_path / "s9"
    shutil.copytree(hundred / "s9", edited)
    scenario = edited / "scenario.toml"
    scenario.write_text(scenario.read_text() + "\n# edited\n")
    given = [*shards(hundred, [k for k in range(1, 101) if k != 9]), edited]
    assert run("merge", *given, "--out", tmp_path / "m") == 2
    assert f"{edited}/scenario.toml: differs" in capsys.readouterr().err
