"""The inferrer: the agent's memory of what the user prefers.

Each method subclasses ``Inferrer`` and implements two steps of the paper's
Algorithm 1: ``retrieve`` (before the draft: what preferences and examples to
draft with) and ``learn`` (after the user's text: update the memory).
"""

from __future__ import annotations

import msgspec

from prose_sim.actors.base import Actor
from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    Event,
    InstanceStarted,
    PreferencesInferred,
    PreferencesRetrieved,
)


class Retrieved(msgspec.Struct, frozen=True):
    preferences: str
    examples: list[tuple[str, str]] = []


class Learned(msgspec.Struct, frozen=True):
    preferences: str
    components: list[str] = []


class Inferrer(Actor):
    name = "inferrer"
    subscribes = (InstanceStarted, DraftProduced, DemonstrationProduced)
    stages = {InstanceStarted: "retrieve", DemonstrationProduced: "learn"}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._instances: dict[int, InstanceStarted] = {}
        self._drafts: dict[int, DraftProduced] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, InstanceStarted):
            self._instances[event.instance] = event
            got = await self.retrieve(event)
            await self.ctx.bus.publish(
                PreferencesRetrieved,
                instance=event.instance,
                preferences=got.preferences,
                examples=got.examples,
            )
        elif isinstance(event, DraftProduced):
            self._drafts[event.instance] = event
        elif isinstance(event, DemonstrationProduced):
            instance = self._instances.pop(event.instance)
            draft = self._drafts.pop(event.instance)
            learned = await self.learn(instance, draft, event)
            await self.ctx.bus.publish(
                PreferencesInferred,
                instance=event.instance,
                preferences=learned.preferences,
                components=learned.components,
            )

    async def retrieve(self, instance: InstanceStarted) -> Retrieved:
        raise NotImplementedError

    async def learn(
        self, instance: InstanceStarted, draft: DraftProduced, demonstration: DemonstrationProduced
    ) -> Learned:
        raise NotImplementedError
