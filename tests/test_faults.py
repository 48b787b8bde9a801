"""Fault injection: failures are retried, recorded and counted; a faulty run still completes."""

from __future__ import annotations

import anyio
import pytest
from conftest import MINIMAL

from prose_sim.config import RunOptions
from prose_sim.config.models import FaultSettings
from prose_sim.eventlog import read_events
from prose_sim.events import ModelFailed, ModelResponded, ParseFailed, StepFailed
from prose_sim.models.backends.faulty import FaultyBackend
from prose_sim.models.backends.scripted import ScriptedBackend
from prose_sim.models.protocol import ROLES
from prose_sim.runtime.prepare import Doubles, prepare
from prose_sim.runtime.replay import replay_run
from prose_sim.runtime.runner import execute
from prose_sim.scenario import ScenarioError, load_scenario

SCENARIO = (
    MINIMAL.replace("seeds = [1235]", "seeds = [1, 2]").replace(
        "[methods.oracle]", "[methods.prose]"
    )
    + """
[metrics]
bertscore = ""
[retry]
backoff_s = 0.0
"""
)


def faulty_run(write_scenario, out, **faults):
    scenario = load_scenario(write_scenario(SCENARIO))
    backend = FaultyBackend(ScriptedBackend(), FaultSettings(seed=7, **faults))
    outcome = anyio.run(
        lambda: execute(
            prepare(
                scenario,
                out,
                RunOptions(progress="off"),
                doubles=Doubles(backends={r: backend for r in ROLES}),
            )
        )
    )
    return outcome, backend, list(read_events(out / "events.jsonl"))


def test_a_run_with_20_percent_failures_completes_and_counts_every_failure(
    write_scenario, tmp_path
):
    outcome, backend, events = faulty_run(write_scenario, tmp_path / "run", failure_rate=0.2)
    assert outcome.status == "completed" and outcome.episodes_completed == outcome.episodes
    injected = backend.injected["failure"]
    assert injected > 20
    # every injected failure is in the log: a retried attempt of an answered call, or an attempt of a failed one
    in_log = sum(e.attempts - 1 for e in events if isinstance(e, ModelResponded))
    in_log += sum(e.attempts for e in events if isinstance(e, ModelFailed))
    assert in_log == injected == outcome.failed_attempts
    failed_calls = [e for e in events if isinstance(e, ModelFailed)]
    assert outcome.model_failures == len(failed_calls)
    # a call that failed every attempt failed its instance's step, nothing more
    failed_steps = {(e.episode_id, e.instance) for e in events if isinstance(e, StepFailed)}
    assert {(e.episode_id, e.instance) for e in failed_calls} <= failed_steps
    assert outcome.instances_failed == len(failed_steps)


def test_fault_injection_is_reproducible(write_scenario, tmp_path):
    faulty_run(write_scenario, tmp_path / "a", failure_rate=0.3, malformed_rate=0.2)
    faulty_run(write_scenario, tmp_path / "b", failure_rate=0.3, malformed_rate=0.2)
    assert (tmp_path / "a" / "results.csv").read_bytes() == (
        tmp_path / "b" / "results.csv"
    ).read_bytes()


def test_malformed_answers_become_parse_failures_not_crashes(write_scenario, tmp_path):
    outcome, backend, events = faulty_run(write_scenario, tmp_path / "run", malformed_rate=0.5)
    assert outcome.status == "completed"
    assert backend.injected["malformed"] > 0
    assert sum(isinstance(e, ParseFailed) for e in events) > 0


def test_latency_spikes_delay_answers(write_scenario, tmp_path):
    _outcome, backend, events = faulty_run(
        write_scenario, tmp_path / "run", latency_spike_rate=0.05, latency_spike_s=0.2
    )
    slow = [e for e in events if isinstance(e, ModelResponded) and e.latency_s >= 0.2]
    assert len(slow) == backend.injected["spike"] > 0


def test_a_faulty_run_replays_exactly_failures_included(write_scenario, tmp_path):
    faulty_run(write_scenario, tmp_path / "run", failure_rate=0.3)
    outcome = anyio.run(lambda: replay_run(tmp_path / "run", tmp_path / "replay", progress="off"))
    assert outcome.identical and outcome.unrecorded_calls == 0


def test_faults_from_a_scenario(write_scenario, tmp_path):
    text = SCENARIO + "[models.agent.faults]\nfailure_rate = 0.25\nseed = 3\n"
    scenario = load_scenario(write_scenario(text))
    assert scenario.models.agent.faults == FaultSettings(failure_rate=0.25, seed=3)
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.failed_attempts > 0
    by_role = {u["role"]: u for u in outcome.usage}
    assert by_role["agent"]["attempts"] > by_role["agent"]["calls"]
    assert by_role["user"]["attempts"] == by_role["user"]["calls"]  # only the agent's calls fail


@pytest.mark.parametrize(
    "line, key", [("failure_rate = 1.5", "failure_rate"), ("typo = 1", "typo")]
)
def test_bad_fault_settings_name_the_key(write_scenario, line, key):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(SCENARIO + f"[models.agent.faults]\n{line}\n"))
    assert f"models.agent.faults.{key}" in str(info.value)
