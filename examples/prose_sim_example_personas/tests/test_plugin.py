"""The example plugin, installed: prose_sim finds its personas and runs them."""

from __future__ import annotations

import anyio

from prose_sim.config import RunOptions
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import scenario_from_dict
from prose_sim.world.personas import catalog_with


def test_the_plugin_personas_are_in_the_catalog():
    catalog = catalog_with()
    captain = catalog.get("plume", "summarization", "captains_log")
    assert captain.behaviour.template.endswith("logbook.j2")
    assert "plugin seafarers" in catalog.origin(captain)
    assert len(catalog.get("plume", "email_writing", "harbour_master").documents) == 3


def test_the_plugin_personas_run_in_a_scenario(tmp_path):
    scenario = scenario_from_dict(
        {
            "name": "plugin",
            "demonstrations_per_user": 2,
            "tasks": {
                "summarization": {"personas": ["captains_log"]},
                "email_writing": {"personas": ["harbour_master"]},
            },
            "methods": {"no_learning": {}},
            "metrics": {"bertscore": ""},
        },
        "plugin test",
    )
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed" and outcome.instances == 4
    purposes = {u["purpose"] for u in outcome.usage if u["role"] == "user"}
    assert (
        {"demonstrate", "accept"} <= purposes <= {"demonstrate", "accept", "edit"}
    )  # the harbour master edits drafts
