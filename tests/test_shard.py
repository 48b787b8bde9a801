"""Sharding a grid and merging the shards: the same results as one unsharded run."""

from __future__ import annotations

import pytest
from conftest import MINIMAL

from prose_sim.cli import main
from prose_sim.errors import UsageError
from prose_sim.eventlog import read_events
from prose_sim.events import EpisodeStarted
from prose_sim.runtime.plan import expand, parse_shard, select_shard
from prose_sim.scenario import load_scenario

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
    assert "missing [3]" in capsys.readouterr().err
    assert run("run", scenario, "--out", tmp_path / "whole", "--no-report") == 0
    assert run("merge", tmp_path / "s1", tmp_path / "whole", "--out", tmp_path / "m2") == 2
    assert "not a shard" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1-3", "2/"])
def test_a_bad_shard_is_a_clear_error(text):
    with pytest.raises(UsageError):
        parse_shard(text)
