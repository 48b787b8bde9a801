"""Preparing a run: every load and check, nothing written.

``prepare`` takes a scenario (with its world) and the run's options and returns a
``PreparedRun``: the episodes to run, the models built (an API key that is not
set, a model that cannot load and a run folder that is not new or empty each stop
it here, before anything is written), the BERTScore and retrieval models loaded,
and, for a resumed or replayed run, the answers recorded in its log.
``runner.execute`` then locks the folder, writes it and runs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prose_sim.actors.judge import TextScorer
from prose_sim.config import RunOptions, Scenario
from prose_sim.errors import UsageError
from prose_sim.models.embeddings import Embedder, Retrieval
from prose_sim.models.protocol import ROLES, Backend
from prose_sim.models.recorded import RecordedResponses
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.backends import BuiltModels, build_models
from prose_sim.runtime.plan import EpisodePlan, expand, parse_shard, select_shard
from prose_sim.runtime.resume import PriorRun
from prose_sim.runtime.setup import default_embedder, default_scorer
from prose_sim.world.assembly import ResolvedRun, assemble


@dataclass(frozen=True)
class Doubles:
    """What replaces the scenario's models in a test: backends by role, the retrieval
    model, the ``[metrics]`` BERTScore model."""

    backends: Mapping[str, Backend] = field(default_factory=dict)
    embedder: Embedder | Retrieval | None = None
    scorer: TextScorer | None = None


NO_DOUBLES = Doubles()
DEFAULT_OPTIONS = RunOptions()


@dataclass(frozen=True)
class PreparedRun:
    """A run ready to execute: checked, its models built and loaded, nothing written."""

    run: ResolvedRun
    run_dir: Path
    options: RunOptions
    all_plans: list[EpisodePlan]  # the whole grid (or shard)
    plans: list[EpisodePlan]  # those still to run
    done: dict[str, str]  # episode id -> status, of a resumed run's finished episodes
    limit: int  # episodes in flight at once
    shard: tuple[int, int] | None
    built: BuiltModels
    embedder: Embedder | Retrieval | None
    scorer: TextScorer | None
    prior: PriorRun | None  # the run resumed in its folder
    recorded: RecordedResponses | None  # answers served before any model is asked
    derived_from: str = ""  # a rescore: the run its simulation's answers come from

    @property
    def scenario(self) -> Scenario:
        return self.run.scenario


def prepare(
    run: ResolvedRun | Scenario,
    run_dir: Path,
    options: RunOptions = DEFAULT_OPTIONS,
    *,
    prior: PriorRun | None = None,
    replay: RecordedResponses | None = None,
    replay_roles: Collection[str] = ROLES,
    derived_from: str = "",
    doubles: Doubles = NO_DOUBLES,
) -> PreparedRun:
    """Every load and check of a run into ``run_dir``, nothing written.

    A bare ``Scenario`` (already loaded, so checked) is assembled here.
    ``prior``: resume that run in its folder (finished episodes are kept, the rest run
    again, served the answers they already had from the log). ``replay``: answer every
    request from these recorded answers, through the replay backend; no model is built.
    ``replay_roles``: the roles a replay serves from the log (a rescore: every role but the
    judge, whose model is built and asked). ``derived_from``: the run whose recorded answers
    a rescore serves, as its ``RunStarted`` says.
    """
    if not isinstance(run, ResolvedRun):
        run = assemble(run)
    scenario = run.scenario
    shard = options.shard
    if prior is not None and prior.started is not None and prior.started.shard:
        shard = parse_shard(prior.started.shard)  # a resumed shard stays that shard
    all_plans = select_shard(expand(scenario, run.catalog), shard)
    done = prior.finished if prior is not None else {}
    plans = [p for p in all_plans if p.episode_id not in done]
    limit = options.concurrency or scenario.concurrency or max(1, len(plans))
    if prior is not None and prior.nothing_to_resume:
        raise UsageError(f"{run_dir}: nothing to resume (the run finished, every episode whole)")
    if prior is None:
        RunFolder(run_dir).check_new()  # refused before any model loads
    # checks API keys (and loads models) before anything is written
    replayed = tuple(replay_roles) if replay is not None else ()
    built = build_models(scenario, limit, replay=replayed, shard=shard).with_given(doubles.backends)
    scorer = doubles.scorer if doubles.scorer is not None else default_scorer(scenario)
    embedder = doubles.embedder if doubles.embedder is not None else default_embedder(scenario)
    recorded = replay if replay is not None else (prior.recorded_answers() if prior else None)
    return PreparedRun(
        run=run,
        run_dir=run_dir,
        options=options,
        all_plans=all_plans,
        plans=plans,
        done=done,
        limit=limit,
        shard=shard,
        built=built,
        embedder=embedder,
        scorer=scorer,
        prior=prior,
        recorded=recorded,
        derived_from=derived_from,
    )
