"""End-to-end runs on the scripted backend: determinism, the log, failures."""

from __future__ import annotations

import csv
import io

import anyio
from conftest import MINIMAL, SCENARIOS

from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import EpisodeFinished, InstanceFinished, ModelFailed, StepFailed
from prose_sim.models.backends.scripted import ScriptedBackend
from prose_sim.results.collector import ResultsCollector
from prose_sim.runtime.plan import expand
from prose_sim.runtime.prepare import Doubles, prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario

GRID = (
    MINIMAL.replace("seeds = [1235]", "seeds = [1235, 9328]")
    + """
[tasks.email_writing]
framework = ["plume", "prelude"]
personas = ["ccby", "ampere"]
[models.user]
latency_s = 0.002
latency_jitter = 1.0
[models.agent]
latency_s = 0.001
latency_jitter = 1.0
"""
)


def run(scenario, out, backends=None, **options):
    doubles = Doubles(backends=backends or {})
    options = RunOptions(progress="off", **options)
    return anyio.run(lambda: execute(prepare(scenario, out, options, doubles=doubles)))


def test_grid_expansion_is_one_episode_per_task_framework_method_seed_user(write_scenario):
    scenario = load_scenario(write_scenario(GRID))
    plans = expand(scenario)
    # summarization: 1 framework x 2 users; email: 2 frameworks x 2 users; x 2 methods x 2 seeds
    assert len(plans) == (2 + 4) * 2 * 2
    assert len({p.episode_id for p in plans}) == len(plans)
    assert "email_writing/prelude/oracle/9328/ampere" in {p.episode_id for p in plans}


def test_results_do_not_depend_on_concurrency(write_scenario, tmp_path):
    scenario = load_scenario(write_scenario(GRID))
    one = run(scenario, tmp_path / "c1", concurrency=1)
    many = run(scenario, tmp_path / "c500", concurrency=500)
    assert one.status == many.status == "completed"
    first = (tmp_path / "c1" / "results.csv").read_bytes()
    assert first == (tmp_path / "c500" / "results.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(first.decode())))
    assert len(rows) == 24 * 2
    assert {r["status"] for r in rows} == {"ok"}


def test_results_can_be_rebuilt_from_the_log(write_scenario, tmp_path):
    scenario = load_scenario(write_scenario(GRID))
    run(scenario, tmp_path / "run")
    rebuilt = ResultsCollector().observe_all(read_events(tmp_path / "run" / "events.jsonl"))
    assert rebuilt.results_csv() == (tmp_path / "run" / "results.csv").read_text()


def test_run_folder_holds_the_resolved_scenario(write_scenario, tmp_path):
    scenario = load_scenario(write_scenario(MINIMAL), ["seeds=[7]"])
    run(scenario, tmp_path / "run")
    assert load_scenario(tmp_path / "run" / "scenario.toml") == scenario
    assert (tmp_path / "run" / "summary.json").exists()


def test_methods_see_the_same_documents_and_user_texts(write_scenario, tmp_path):
    """A PLUME user's demonstration depends on seed, user and document only."""
    scenario = load_scenario(write_scenario(MINIMAL))
    run(scenario, tmp_path / "run")
    demos: dict[tuple, set] = {}
    docs: dict[tuple, set] = {}
    for event in read_events(tmp_path / "run" / "events.jsonl"):
        user = event.episode_id.rsplit("/", 1)[-1] if event.episode_id else ""
        if type(event).__name__ == "DemonstrationProduced":
            demos.setdefault((user, event.instance), set()).add(event.text)
        if type(event).__name__ == "InstanceStarted":
            docs.setdefault((user, event.instance), set()).add(event.document_id)
    assert demos and all(len(v) == 1 for v in demos.values())
    assert all(len(v) == 1 for v in docs.values())


class FailingFor:
    """Wraps the scripted backend and always fails for some purposes."""

    def __init__(self, purposes):
        self.purposes = purposes
        self.inner = ScriptedBackend()
        self.calls = 0

    async def complete(self, request):
        self.calls += 1
        if request.purpose in self.purposes:
            raise ConnectionError("simulated outage")
        return await self.inner.complete(request)


def test_a_failing_model_call_is_retried_then_recorded_as_a_failed_step(write_scenario, tmp_path):
    scenario = load_scenario(write_scenario(MINIMAL), ["retry.backoff_s=0", "retry.attempts=2"])
    user = FailingFor({"demonstrate"})
    outcome = run(
        scenario,
        tmp_path / "run",
        backends={"user": user, "agent": ScriptedBackend(), "judge": ScriptedBackend()},
    )
    assert outcome.status == "completed"  # the run finishes; the instances are failed
    events = list(read_events(tmp_path / "run" / "events.jsonl"))
    failed_calls = [e for e in events if isinstance(e, ModelFailed)]
    steps = [e for e in events if isinstance(e, StepFailed)]
    finished = [e for e in events if isinstance(e, InstanceFinished)]
    assert len(failed_calls) == len(steps) == len(finished) == 2 * 2 * 2
    assert user.calls == 2 * len(failed_calls)  # two attempts each
    assert all(s.stage == "demonstrate" and "simulated outage" in s.error for s in steps)
    assert all(f.status == "failed" for f in finished)
    assert outcome.instances_failed == 8 and outcome.model_failures == 8


def test_a_crashing_actor_fails_its_episode_not_the_run(write_scenario, tmp_path, monkeypatch):
    from prose_sim.actors.inferrers.simple import Oracle

    async def broken(self, instance):
        raise RuntimeError("bug")

    monkeypatch.setattr(Oracle, "learn", broken)
    scenario = load_scenario(write_scenario(MINIMAL))
    outcome = run(scenario, tmp_path / "run")
    # learn failures are step failures: every oracle instance fails, episodes complete
    assert outcome.status == "completed"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "run" / "results.csv").read_text())))
    assert {r["status"] for r in rows if r["method"] == "oracle"} == {"failed"}
    assert {r["status"] for r in rows if r["method"] == "no_learning"} == {"ok"}
    episodes = [
        e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, EpisodeFinished)
    ]
    assert all(e.status == "completed" for e in episodes)


def test_quickstart_runs_on_the_scripted_backend_too(tmp_path):
    scripted = [f"models.{role}.backend=scripted" for role in ("user", "agent", "judge")]
    outcome = run(load_scenario(SCENARIOS / "quickstart.toml", scripted), tmp_path / "qs")
    assert outcome.status == "completed" and outcome.instances == 8


def test_an_unexpected_actor_error_fails_the_episode_and_the_run_goes_on(
    write_scenario, tmp_path, monkeypatch
):
    from prose_sim.actors.judge import Judge
    from prose_sim.events import DraftProduced

    original = Judge.handle

    async def handle(self, event):
        if isinstance(event, DraftProduced) and self.ctx.personas.get("imdb"):
            raise RuntimeError("judge bug")
        await original(self, event)

    monkeypatch.setattr(Judge, "handle", handle)
    scenario = load_scenario(write_scenario(MINIMAL))
    outcome = run(scenario, tmp_path / "run")
    assert outcome.status == "failed"
    assert outcome.episodes_failed == 2 and outcome.episodes_completed == 2
    episodes = [
        e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, EpisodeFinished)
    ]
    assert sorted(e.status for e in episodes) == ["completed", "completed", "failed", "failed"]
    assert any("judge bug" in e.error for e in episodes)


def test_a_resolved_run_runs_on_its_own_world_without_assembling_it_again(
    write_scenario, tmp_path, monkeypatch
):
    import gc

    from prose_sim.scenario import load_run
    from prose_sim.world import assembly

    resolved = load_run(write_scenario(MINIMAL))

    def assembled_again(*args, **kwargs):
        raise AssertionError("the world was assembled again")

    for name in ("assemble", "bundled_corpus", "catalog_with", "scenario_catalog"):
        monkeypatch.setattr(assembly, name, assembled_again)
    before = gc.get_threshold()
    outcome = run(resolved, tmp_path / "run")
    assert outcome.status == "completed" and outcome.instances == 8
    assert gc.get_threshold() == before  # the GC policy is the CLI's, not the runner's
