"""The simulated user: writes its own text from its hidden, true preferences.

PLUME users write directly; PRELUDE users read the agent's draft and either
accept it or edit it.
"""

from __future__ import annotations

import re

from prose_sim.actors.base import Actor
from prose_sim.events import DemonstrationProduced, DraftProduced, Event, InstanceStarted
from prose_sim.templating import render

_ACCEPT = re.compile(r"^\W*accept(ed|able)?\W*$", re.IGNORECASE)


def parse_accept_or_edit(answer: str, draft: str) -> tuple[bool, str]:
    """(accepted, user text): an answer that is only the word ACCEPT keeps the draft."""
    if _ACCEPT.match(answer.strip()):
        return True, draft
    return False, answer.strip()


class SimulatedUser(Actor):
    name = "user"
    subscribes = (InstanceStarted, DraftProduced)
    stages = {DraftProduced: "demonstrate"}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._instances: dict[int, InstanceStarted] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, InstanceStarted):
            self._instances[event.instance] = event
        elif isinstance(event, DraftProduced):
            instance = self._instances.pop(event.instance)
            persona = self.ctx.personas[instance.persona]
            if self.ctx.framework == "prelude":
                prompt = render(
                    "prelude_edit",
                    task=self.ctx.task,
                    framework=self.ctx.framework,
                    document=instance.document,
                    preferences=persona.preferences,
                    draft=event.text,
                )
                answer = await self.ctx.models.complete("user", "edit", event.instance, prompt)
                accepted, text = parse_accept_or_edit(answer.text, event.text)
            else:
                prompt = render(
                    "demonstrate",
                    task=self.ctx.task,
                    framework=self.ctx.framework,
                    document=instance.document,
                    preferences=persona.preferences,
                )
                answer = await self.ctx.models.complete("user", "demonstrate", event.instance, prompt)
                accepted, text = False, answer.text.strip()
            await self.ctx.bus.publish(
                DemonstrationProduced, instance=event.instance, text=text, accepted=accepted
            )
