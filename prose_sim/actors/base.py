"""An actor: one inbox, its own state, reacting to events one at a time.

Actors never call each other; they publish events on their episode's bus.
A failure while handling an event becomes a ``StepFailed`` event for that
task instance (the episode moves on), never a crash of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from prose_sim.errors import describe_error
from prose_sim.events import Event, StepFailed
from prose_sim.inbox import Inbox
from prose_sim.models.embeddings import Embedder, Retrieval
from prose_sim.models.gateway import ModelClient
from prose_sim.world.personas import Persona
from prose_sim.world.tasks import Task

E = TypeVar("E", bound=Event)


class Bus(Protocol):
    def subscribe(
        self, kinds: Iterable[type[Event]], quiet: Iterable[type[Event]] = ()
    ) -> Inbox[Event]:
        """An inbox for ``kinds``; those of ``quiet`` do not wake its reader."""
        ...

    async def publish(self, event: E) -> E:
        """Stamp the envelope of an event built with its own fields, and deliver it."""
        ...


@dataclass(frozen=True)
class ActorContext:
    """What an actor of an episode is given: its bus, its models, the world facts."""

    bus: Bus
    models: ModelClient
    task: Task
    framework: str
    seed: int  # the scenario seed this episode runs under
    personas: Mapping[str, Persona]  # the simulated users of this episode, by name
    agent_model: str = ""  # the agent role's model name (per-model method defaults)
    embedder: Embedder | Retrieval | None = None  # for similarity-based retrieval


class Actor:
    name: ClassVar[str]
    subscribes: ClassVar[tuple[type[Event], ...]]
    # the protocol stage each handled event kind starts (for StepFailed)
    stages: ClassVar[dict[type[Event], str]] = {}
    # kinds of ``subscribes`` this actor only records (no model call, nothing published):
    # they do not wake it, and are handled, in order, before the next event that does. A
    # subclass that acts on one of them takes it out of ``quiet``
    quiet: ClassVar[tuple[type[Event], ...]] = ()

    def __init__(self, ctx: ActorContext):
        self.ctx = ctx
        self._inbox = ctx.bus.subscribe(self.subscribes, self.quiet)

    async def run(self) -> None:
        async with self._inbox:
            async for event in self._inbox:
                try:
                    await self.handle(event)
                except Exception as exc:  # recorded as a failed step, the run goes on
                    stage = self.stages.get(type(event))
                    if stage is None:
                        raise
                    await self.ctx.bus.publish(
                        StepFailed(
                            instance=getattr(event, "instance", -1),
                            actor=self.name,
                            stage=stage,
                            error=describe_error(exc),
                        )
                    )

    async def handle(self, event: Event) -> None:
        raise NotImplementedError
