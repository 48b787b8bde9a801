"""``run --resume RUN_DIR --extend [SCENARIO]``: grow a run's grid in its own folder.

The scenario may add seeds, users (to a task's personas, or persona files to draw
them from), tasks, frameworks, methods, or demonstrations per user to the recorded
one; any other difference is refused, naming the key. The run then continues as a
resumed run of the larger scenario:

- an episode that finished and is the same in the larger grid (the same plan, the same
  documents in the same order, the same users in its task) is kept as it is;
- an episode whose plan grew (more demonstrations, more users in an episode over all
  users, a task with more users for preference accuracy) runs again from its start, every
  answer it was already given served from the log, the new ones asked;
- a new episode runs.

So the extended run's results equal a run of the larger scenario from scratch, and
nothing that was paid for is asked again. The log's ``RunStarted`` becomes the larger
scenario's (``extended_from`` lists the digests it grew from) and a ``RunResumed``
says what was added.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import msgspec

from prose_sim.config import Scenario
from prose_sim.errors import UsageError
from prose_sim.events import Event, InstanceStarted
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.episode import episode_instances
from prose_sim.runtime.plan import expand
from prose_sim.runtime.resume import Extension, PriorRun, load_prior, scenario_changes
from prose_sim.scenario.loading import load_run
from prose_sim.world.assembly import ResolvedRun

# what an extension may change; each is checked to only grow below
GROWING = (
    "seeds",
    "demonstrations_per_user",
    "persona_files",
    "concurrency",
    "report",
    "budget",
    "sharding",
)


def load_extension(run_dir: Path, scenario_path: Path | None, overrides: Sequence[str]) -> PriorRun:
    """The recorded run, to be continued as a run of the larger scenario; a UsageError
    naming every difference that is not an addition."""
    prior = load_prior(run_dir)
    started = prior.started
    origin = str(scenario_path or RunFolder(run_dir).scenario_path)
    if started is None:
        raise UsageError(f"{run_dir}: the run never began; run the larger scenario afresh")
    if started.shard:
        raise UsageError(
            f"{run_dir}: holds shard {started.shard} of a grid; a larger grid divides into "
            f"other shards: run it afresh (its shards with --shard), or extend the merged run"
        )
    run = (
        load_run(scenario_path, list(overrides))
        if scenario_path is not None
        else RunFolder(run_dir).load_run(list(overrides))
    )
    refused = refusals(prior.scenario, run.scenario)
    if refused:
        shown = "; ".join(refused[:5]) + ("; ..." if len(refused) > 5 else "")
        raise UsageError(
            f"{origin}: an extension may only add seeds, users, tasks, frameworks, methods or "
            f"demonstrations per user to the run's scenario; {shown}"
        )
    added = additions(prior.scenario, run.scenario)
    if not added:
        raise UsageError(
            f"{origin}: adds nothing to the run's scenario; to continue the run: "
            f"run --resume {run_dir}"
        )
    regrown = grown_episodes(prior.run, run, prior.events)
    return msgspec.structs.replace(
        prior, run=run, extension=Extension(added="; ".join(added), regrown=regrown)
    )


def refusals(old: Scenario, new: Scenario) -> list[str]:
    """Every difference of ``new`` from ``old`` that is not an addition, one line each."""
    changes = scenario_changes(old, new)
    out = []
    if dropped := [s for s in old.seeds if s not in new.seeds]:
        out.append(f"seeds: {dropped} dropped")
    if new.demonstrations_per_user < old.demonstrations_per_user:
        out.append(
            f"demonstrations_per_user: {old.demonstrations_per_user} in the run, "
            f"{new.demonstrations_per_user} now (fewer)"
        )
    if dropped_files := [f for f in old.persona_files if f not in new.persona_files]:
        out.append(f"persona_files: {dropped_files} dropped")
    for task, spec in old.tasks.items():
        now = new.tasks.get(task)
        if now is None:
            out.append(f"tasks.{task}: dropped")
            continue
        if gone := [f for f in spec.frameworks if f not in now.frameworks]:
            out.append(f"tasks.{task}.framework: {gone} dropped")
        if gone := [p for p in spec.personas or [] if p not in (now.personas or [])]:
            out.append(f"tasks.{task}.personas: {gone} dropped")
    for label, settings in old.methods.items():
        if label not in new.methods:
            out.append(f"methods.{label}: dropped")
        elif new.methods[label] != settings:
            out.extend(
                c for c in changes if c.startswith((f"methods.{label}.", f"methods.{label}:"))
            )
    out.extend(c for c in changes if not _grows(c.partition(":")[0].partition(".")[0]))
    return out


def _grows(top: str) -> bool:
    """Whether a top-level key is one that an extension may grow (checked by ``refusals``)."""
    return top in GROWING or top in ("tasks", "methods")


def additions(old: Scenario, new: Scenario) -> list[str]:
    """What ``new`` adds to ``old``, one phrase each ("seeds 2, 3")."""
    out = []
    if seeds := [s for s in new.seeds if s not in old.seeds]:
        out.append("seeds " + ", ".join(map(str, seeds)))
    if new.demonstrations_per_user > old.demonstrations_per_user:
        out.append(
            f"demonstrations per user {old.demonstrations_per_user} -> "
            f"{new.demonstrations_per_user}"
        )
    for task, spec in new.tasks.items():
        before = old.tasks.get(task)
        if before is None:
            out.append(f"task {task}")
            continue
        if frameworks := [f for f in spec.frameworks if f not in before.frameworks]:
            out.append(f"{task} frameworks " + ", ".join(frameworks))
        if users := [p for p in spec.personas or [] if p not in (before.personas or [])]:
            out.append(f"{task} users " + ", ".join(users))
    if methods := [m for m in new.methods if m not in old.methods]:
        out.append("methods " + ", ".join(methods))
    return out


def grown_episodes(old: ResolvedRun, new: ResolvedRun, events: list[Event]) -> frozenset[str]:
    """The episodes of the recorded grid that the larger one changes: a different plan, other
    documents or order, or other users in their task (whom preference accuracy compares)."""
    before = {plan.episode_id: plan for plan in expand(old.scenario, old.catalog)}
    recorded: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for event in events:
        if isinstance(event, InstanceStarted):
            recorded[event.episode_id].append((event.instance, event.persona, event.document_id))
    grown = set()
    for plan in expand(new.scenario, new.catalog):
        was = before.get(plan.episode_id)
        if was is None:
            continue  # a new episode
        now = [
            (i, persona, doc.id)
            for i, (persona, doc) in enumerate(
                episode_instances(
                    plan, new.catalog, new.corpus, new.scenario.demonstrations_per_user
                )
            )
        ]
        population = (plan.framework, plan.task)
        if (
            was != plan
            or sorted(recorded.get(plan.episode_id, [])) != now
            or old.populations.get(population) != new.populations.get(population)
        ):
            grown.add(plan.episode_id)
    return frozenset(grown)
