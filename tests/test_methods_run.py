"""Every method runs end to end on the scripted backend, both tasks and frameworks."""

from __future__ import annotations

import csv
import io

import anyio
from conftest import SCENARIOS

from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import EpisodeStarted
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario


def test_every_method_runs_on_both_tasks_and_frameworks(tmp_path):
    scenario = load_scenario(SCENARIOS / "methods.toml", ["demonstrations_per_user=3"])
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "run" / "results.csv").read_text())))
    assert {r["status"] for r in rows} == {"ok"}
    seen = {(r["task"], r["framework"], r["method"]) for r in rows}
    for method in scenario.methods:
        for task in ("summarization", "email_writing"):
            for framework in ("plume", "prelude"):
                assert (task, framework, method) in seen
    purposes = {(u["method"], u["purpose"]) for u in outcome.method_usage if u["role"] != "judge"}
    assert ("prose_full", "validate") in purposes and ("prose_full", "candidate") in purposes
    assert ("prose_1sc_ap_nv", "validate") not in purposes
    assert ("cipherN", "merge") in purposes and ("cipher1", "merge") not in purposes
    assert not any(
        m == "icl" and p not in {"draft", "demonstrate", "accept", "edit"} for m, p in purposes
    )
    # one episode over all users for the cross-user retrieval mode
    episodes = [
        e
        for e in read_events(tmp_path / "run" / "events.jsonl")
        if isinstance(e, EpisodeStarted) and e.method == "icl_most_recent"
    ]
    assert len(episodes) == 4 and all(len(e.personas) == 2 and e.instances == 6 for e in episodes)
    retrieval = [
        float(r["retrieval_accuracy"])
        for r in rows
        if r["method"] == "icl_most_recent" and r["retrieval_accuracy"]
    ]
    assert retrieval and min(retrieval) < 1.0
