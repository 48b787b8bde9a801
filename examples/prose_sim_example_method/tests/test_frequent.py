"""The example method plugin: its counting rules, and, installed, a scenario that runs it."""

from __future__ import annotations

import anyio
from prose_sim_example_method import FrequentComponents, components_of, most_frequent

from prose_sim.actors.inferrers import method_class
from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import PreferencesInferred, PreferencesRetrieved
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import scenario_from_dict


def test_an_answer_splits_into_trimmed_components_without_repeats():
    assert components_of(" use emojis; Keep it brief. ;; use Emojis ;") == [
        "use emojis",
        "Keep it brief",
    ]
    assert components_of("") == []


def test_the_most_frequent_components_are_kept_ties_to_the_most_recent():
    learned = [
        ["be brief", "use emojis"],
        ["use emojis", "a simile"],
        ["Use Emojis", "be brief", "rhymes"],
    ]
    assert most_frequent(learned, keep=2) == ["use emojis", "be brief"]
    assert most_frequent([["b"], ["a"]], keep=1) == ["b"]  # a tie: the first seen (most recent)
    assert most_frequent([], keep=3) == []


def test_the_installed_plugin_is_the_method_named_frequent():
    assert method_class("frequent") is FrequentComponents


def test_the_plugin_method_runs_in_a_scenario(tmp_path):
    scenario = scenario_from_dict(
        {
            "name": "plugin-method",
            "demonstrations_per_user": 3,
            "tasks": {"summarization": {"personas": ["cnn_dailymail"]}},
            "methods": {"frequent": {}},
            "metrics": {"bertscore": ""},
        },
        "plugin test",
    )
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed" and outcome.instances == 3
    events = list(read_events(tmp_path / "run" / "events.jsonl"))
    learned = [e.components for e in events if isinstance(e, PreferencesInferred)]
    drafted = [e.preferences for e in events if isinstance(e, PreferencesRetrieved)]
    assert len(learned) == 3 and all(learned)  # the scripted agent names 1 to 3 components
    assert drafted[0] == ""  # nothing learned before the first instance
    assert drafted[1] == "; ".join(most_frequent([learned[0]]))
    assert drafted[2] == "; ".join(most_frequent([learned[1], learned[0]]))


def test_the_plugins_own_knob_keep_is_set_from_the_scenario(tmp_path):
    scenario = scenario_from_dict(
        {
            "name": "plugin-knob",
            "demonstrations_per_user": 3,
            "tasks": {"summarization": {"personas": ["cnn_dailymail"]}},
            "methods": {"frequent": {"keep": 1}},
            "metrics": {"bertscore": ""},
        },
        "plugin test",
    )
    assert scenario.methods["frequent"].keep == 1  # type: ignore[attr-defined]
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed"
    events = list(read_events(tmp_path / "run" / "events.jsonl"))
    learned = [e.components for e in events if isinstance(e, PreferencesInferred)]
    drafted = [e.preferences for e in events if isinstance(e, PreferencesRetrieved)]
    assert drafted[1] == "; ".join(most_frequent([learned[0]], keep=1))
    assert drafted[2] == "; ".join(most_frequent([learned[1], learned[0]], keep=1))
    assert all(d.count(";") == 0 for d in drafted)
