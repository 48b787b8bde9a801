"""The writing agent: drafts the task's text with the inferrer's current preferences."""

from __future__ import annotations

from prose_sim.actors.base import Actor
from prose_sim.events import DraftProduced, Event, InstanceStarted, PreferencesRetrieved
from prose_sim.templating import render


class WritingAgent(Actor):
    name = "agent"
    subscribes = (InstanceStarted, PreferencesRetrieved)
    stages = {PreferencesRetrieved: "draft"}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._documents: dict[int, str] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, InstanceStarted):
            self._documents[event.instance] = event.document
        elif isinstance(event, PreferencesRetrieved):
            document = self._documents.pop(event.instance)
            prompt = render(
                "draft",
                task=self.ctx.task,
                framework=self.ctx.framework,
                document=document,
                preferences=event.preferences,
                examples=event.examples,
            )
            completion = await self.ctx.models.complete("agent", "draft", event.instance, prompt)
            await self.ctx.bus.publish(
                DraftProduced,
                instance=event.instance,
                text=completion.text.strip(),
                preferences=event.preferences,
            )
