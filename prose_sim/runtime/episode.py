"""One episode: an inferring agent's life over a sequence of task instances.

The director drives the paper's Algorithm 1 for each instance by publishing
``InstanceStarted`` and waiting until the instance is both learned from and
scored (or a step failed); the actors do the rest by reacting to events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
import msgspec

from prose_sim.actors.agent import WritingAgent
from prose_sim.actors.base import ActorContext
from prose_sim.actors.inferrers import method_class
from prose_sim.actors.judge import TEXT_METRICS_ONLY, Judge, TextScorer
from prose_sim.actors.user import SimulatedUser
from prose_sim.config.metrics import MetricsSettings
from prose_sim.errors import describe_error
from prose_sim.events import (
    EpisodeFinished,
    EpisodeStarted,
    Event,
    InstanceFinished,
    InstanceStarted,
    MetricsComputed,
    PreferencesInferred,
    StepFailed,
)
from prose_sim.inbox import Inbox
from prose_sim.metrics.offloop import OffLoop
from prose_sim.models.embeddings import Embedder, Retrieval
from prose_sim.models.gateway import Gateway, ModelClient, RoleModel
from prose_sim.runtime.bus import EpisodeBus
from prose_sim.runtime.plan import EpisodePlan
from prose_sim.runtime.sink import EventSender
from prose_sim.seeding import rng_for
from prose_sim.world.corpus import Corpus, Document
from prose_sim.world.personas import Persona, PersonaCatalog
from prose_sim.world.tasks import TASKS, persona_framework, user_edits


class EpisodeWorld:
    """The run-wide things an episode needs: world data, gateway, role models."""

    def __init__(
        self,
        run_id: str,
        catalog: PersonaCatalog,
        corpus: Corpus,
        gateway: Gateway,
        roles: Mapping[str, RoleModel],
        demonstrations_per_user: int,
        embedder: Embedder | Retrieval | None = None,
        *,
        metrics: MetricsSettings = TEXT_METRICS_ONLY,
        scorer: TextScorer | None = None,
        populations: Mapping[tuple[str, str], list[str]] | None = None,
    ):
        """``populations``: the users of each (framework, task) in the run, for preference accuracy."""
        self.embedder = embedder
        self.metrics = metrics
        self.scorer = scorer
        self.populations = populations or {}
        self.run_id = run_id
        self.catalog = catalog
        self.corpus = corpus
        self.gateway = gateway
        self.roles = roles
        self.demonstrations_per_user = demonstrations_per_user
        # runs before each event an episode publishes (see RunControl.checkpoint)
        self.checkpoint: Callable[[], None] = lambda: None
        # where the judges' text metrics are computed, off the loop (None: a thread each time)
        self.offloop: OffLoop | None = None
        # runs when the run's sink is full, before an episode waits for room in it
        self.sink_full: Callable[[], object] = lambda: None

    def instances(self, plan: EpisodePlan) -> list[tuple[str, Document]]:
        """The (persona, document) sequence of an episode (``episode_instances``)."""
        return episode_instances(plan, self.catalog, self.corpus, self.demonstrations_per_user)


def episode_instances(
    plan: EpisodePlan, catalog: PersonaCatalog, corpus: Corpus, demonstrations_per_user: int
) -> list[tuple[str, Document]]:
    """The (persona, document) sequence of an episode, fixed by seed and user.

    An episode over several users interleaves their instances in an order
    fixed by the seed (the same for every method).
    """
    out = []
    for name in plan.personas:
        persona = catalog.get(plan.framework, plan.task, name)
        key = f"{plan.framework}/{plan.task}/{name}"
        for doc in corpus.draw(
            persona.document_source,
            demonstrations_per_user,
            plan.seed,
            key,
            task=plan.task,
        ):
            out.append((name, doc))
    if len(plan.personas) > 1:
        released = _released_order(plan, out, corpus)
        if released is not None:
            return released
        rng_for(plan.seed, "order", plan.framework, plan.task, *plan.personas).shuffle(out)
    return out


def _released_order(
    plan: EpisodePlan, instances: list[tuple[str, Document]], corpus: Corpus
) -> list[tuple[str, Document]] | None:
    """The instances in the order the released code interleaves the users (the paper's
    datasets, one user per source), or None where the corpus has no such order."""
    order = corpus.interleaving(plan.task, plan.seed)
    if order is None:
        return None
    by_key = {(doc.source, doc.id): (name, doc) for name, doc in instances}
    placed = [by_key[key] for key in order if key in by_key]
    return placed if len(placed) == len(instances) == len(by_key) else None


def _as_run(persona: Persona, framework: str) -> Persona:
    """The persona as a run framework's user: in prelude.no_edit it writes, not edits."""
    edits = user_edits(framework)
    if edits is None or persona.behaviour.edit is not None:
        return persona
    return msgspec.structs.replace(
        persona, behaviour=msgspec.structs.replace(persona.behaviour, edit=edits)
    )


async def run_episode(plan: EpisodePlan, world: EpisodeWorld, sink: EventSender) -> str:
    """Run one episode to its end; returns its status. Never raises for its own failures."""
    bus = EpisodeBus(world.run_id, plan.episode_id, sink, world.checkpoint, world.sink_full)
    instances = world.instances(plan)
    try:
        ctx = ActorContext(
            bus=bus,
            models=ModelClient(world.gateway, bus.publish, world.roles, plan.episode_id, plan.seed),
            task=TASKS[plan.task],
            framework=persona_framework(plan.framework),  # prelude.no_edit: PRELUDE's prompts
            seed=plan.seed,
            personas={
                n: _as_run(world.catalog.get(plan.framework, plan.task, n), plan.framework)
                for n in plan.personas
            },
            agent_model=world.roles["agent"].model,
            embedder=world.embedder,
        )
        director_inbox = bus.subscribe((PreferencesInferred, MetricsComputed, StepFailed))
        actors = [
            SimulatedUser(ctx),
            WritingAgent(ctx),
            method_class(plan.method)(ctx, plan.settings),
            Judge(
                ctx,
                world.metrics,
                world.scorer,
                [
                    world.catalog.get(plan.framework, plan.task, name)
                    for name in world.populations.get((plan.framework, plan.task), plan.personas)
                ],
                world.offloop,
            ),
        ]
        await bus.publish(
            EpisodeStarted(
                task=plan.task,
                framework=plan.framework,
                method=plan.method_label,
                seed=plan.seed,
                personas=list(plan.personas),
                instances=len(instances),
                models={role: served.model for role, served in world.roles.items()},
            )
        )
        completed = failed = 0
        async with anyio.create_task_group() as tg:
            for actor in actors:
                tg.start_soon(actor.run)
            async with director_inbox:
                for index, (persona, doc) in enumerate(instances):
                    await bus.publish(
                        InstanceStarted(
                            instance=index,
                            persona=persona,
                            document_id=doc.id,
                            document=doc.text,
                        )
                    )
                    ok = await _await_instance(director_inbox, index)
                    await bus.publish(
                        InstanceFinished(instance=index, status="ok" if ok else "failed")
                    )
                    completed, failed = completed + ok, failed + (not ok)
            await bus.publish(
                EpisodeFinished(
                    status="completed", instances_completed=completed, instances_failed=failed
                )
            )
            await bus.aclose()  # ends the actors' inboxes
        return "completed"
    except Exception as exc:  # a bug in an actor: the episode fails, the run goes on
        with anyio.CancelScope(shield=True):
            if bus.closed:
                return "failed"
            await bus.publish(
                EpisodeFinished(
                    status="failed",
                    instances_completed=0,
                    instances_failed=len(instances),
                    error=describe_error(_first_leaf(exc)),
                )
            )
            await bus.aclose()
        return "failed"


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _await_instance(inbox: Inbox[Event], index: int) -> bool:
    """Wait until instance ``index`` is both learned from and scored, or a step of it
    failed; True when no step failed."""
    pending = {"learn", "score"}
    ok = True
    async for event in inbox:
        match event:
            case StepFailed(instance=instance) if instance == index:
                ok = False
                if event.stage in pending:
                    pending.discard(event.stage)
                else:  # an upstream step failed: nothing downstream will happen
                    pending.clear()
            case PreferencesInferred(instance=instance) if instance == index:
                pending.discard("learn")
            case MetricsComputed(instance=instance) if instance == index:
                pending.discard("score")
            case _:
                continue
        if not pending:
            return ok
    raise RuntimeError("episode bus closed while an instance was in flight")
