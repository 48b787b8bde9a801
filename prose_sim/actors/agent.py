"""The writing agent: the writer role drafts the task's text with the inferrer's current preferences.

The drafts are written by the ``writer`` role (the released code: the user's
model), never by the agent model under test, which only infers.
"""

from __future__ import annotations

from typing import ClassVar

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.actors.writing import task_messages, written_text
from prose_sim.events import DraftProduced, Event, InstanceStarted, PreferencesRetrieved


class WritingAgent(Actor):
    name = "agent"
    subscribes = (InstanceStarted, PreferencesRetrieved)
    quiet = (InstanceStarted,)
    stages: ClassVar[dict[type[Event], str]] = {PreferencesRetrieved: "draft"}

    def __init__(self, ctx: ActorContext):
        super().__init__(ctx)
        self._documents: dict[int, str] = {}

    async def handle(self, event: Event) -> None:
        match event:
            case InstanceStarted():
                self._documents[event.instance] = event.document
            case PreferencesRetrieved():
                document = self._documents.pop(event.instance)
                system, prompt = task_messages(
                    self.ctx.task,
                    self.ctx.framework,
                    document,
                    event.preferences,
                    event.examples,
                    components=event.components,
                    examples_framed=event.examples_framed,
                )
                completion = await self.ctx.models.complete(
                    "writer", "draft", event.instance, prompt, system=system
                )
                await self.ctx.bus.publish(
                    DraftProduced(
                        instance=event.instance,
                        text=written_text(self.ctx.framework, completion.text),
                        preferences=event.preferences,
                    )
                )
