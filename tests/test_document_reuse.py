"""The report says how many of the grid's documents several seeds share (a small corpus)."""

from __future__ import annotations

from collections import defaultdict

from prose_sim.cli import main
from prose_sim.eventlog import read_events
from prose_sim.events import EpisodeStarted, InstanceStarted
from prose_sim.report.build import document_reuse_line

THREE_SEEDS = """
name = "reuse"
seeds = [1235, 9328, 235]
demonstrations_per_user = 5
corpus = "bundled"
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[metrics]
judge = false
bertscore = ""
"""


def row(seed: int, document_id: str) -> dict[str, object]:
    return {"seed": seed, "document_id": document_id}


def test_the_line_counts_documents_used_under_more_than_one_seed():
    rows = [row(1, "a"), row(1, "b"), row(2, "a"), row(2, "c"), row(3, "a"), row(3, "b")]
    assert document_reuse_line(rows) == (
        "Documents: 3 distinct documents over 3 seeds; 2 of them are used under more than one "
        "seed (the seeds share documents, so they are not independent samples)."
    )


def test_one_seed_or_no_shared_document():
    assert document_reuse_line([row(1, "a"), row(1, "b")]) == ""
    assert document_reuse_line([row(1, "a"), row(2, "b")]) == (
        "Documents: 2 distinct documents over 2 seeds; 0 of them are used under more than one seed."
    )


def test_the_report_of_a_bundled_run_says_how_many_documents_the_seeds_share(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(THREE_SEEDS, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "--progress", "off"]) == 0
    seed_of: dict[str, int] = {}
    seeds_of_document: dict[str, set[int]] = defaultdict(set)
    for event in read_events(out / "events.jsonl"):
        if isinstance(event, EpisodeStarted):
            seed_of[event.episode_id] = event.seed
        elif isinstance(event, InstanceStarted):
            seeds_of_document[event.document_id].add(seed_of[event.episode_id])
    shared = sum(len(seeds) > 1 for seeds in seeds_of_document.values())
    # 2 users x 5 documents x 3 seeds drawn from 12 documents a source: seeds must share some
    assert shared > 0
    expected = (
        f"Documents: {len(seeds_of_document)} distinct documents over 3 seeds; {shared} of them "
        "are used under more than one seed"
    )
    report = (out / "report.md").read_text(encoding="utf-8")
    assert expected in report
