"""The simulated user: writes its own text from its hidden, true preferences.

PLUME users write directly; PRELUDE users read the agent's draft and either
accept it or edit it. A persona's ``behaviour`` may change that: its own prompt
template, PRELUDE-style editing in any framework, or noise (each component left
out of a demonstration with some probability, drawn per seed and document).
"""

from __future__ import annotations

import re

from prose_sim.actors.base import Actor
from prose_sim.events import DemonstrationProduced, DraftProduced, Event, InstanceStarted
from prose_sim.seeding import rng_for
from prose_sim.templating import render_template
from prose_sim.world.personas import Persona

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
            behaviour = persona.behaviour
            edits = behaviour.edit if behaviour.edit is not None else self.ctx.framework == "prelude"
            context = dict(
                task=self.ctx.task,
                framework=self.ctx.framework,
                document=instance.document,
                preferences=self._shown_preferences(persona, instance),
            )
            if edits:
                prompt = render_template(behaviour.template or "prelude_edit", draft=event.text, **context)
                answer = await self.ctx.models.complete("user", "edit", event.instance, prompt)
                accepted, text = parse_accept_or_edit(answer.text, event.text)
            else:
                prompt = render_template(behaviour.template or "demonstrate", **context)
                answer = await self.ctx.models.complete("user", "demonstrate", event.instance, prompt)
                accepted, text = False, answer.text.strip()
            await self.ctx.bus.publish(
                DemonstrationProduced, instance=event.instance, text=text, accepted=accepted
            )

    def _shown_preferences(self, persona: Persona, instance: InstanceStarted) -> str:
        """The components this demonstration follows: all, unless the persona is noisy."""
        p = persona.behaviour.ignore_probability
        if p == 0:
            return persona.preferences
        rng = rng_for(self.ctx.seed, "ignore", persona.framework, persona.task, persona.name, instance.document_id)
        return "; ".join(c for c in persona.components if rng.random() >= p)
