"""The simulated user: writes its own text from its hidden, true preferences.

PLUME users write directly, with the same task prompt and system prompt the
writer drafts with (so with the same model an oracle draft is written as the
user writes). PRELUDE users read the agent's draft: one call asks whether it is
good enough (yes / no); only when it is not, a second call edits the draft
(without the document, as in the released code). A persona's ``behaviour`` may
change that: its own prompt template (for the text it writes or the edit),
PRELUDE-style editing in any framework, or noise (each component left out of a
demonstration with some probability, drawn per seed and document).
"""

from __future__ import annotations

from typing import ClassVar

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.actors.writing import task_messages, written_text
from prose_sim.events import DemonstrationProduced, DraftProduced, Event, InstanceStarted
from prose_sim.parsing import parse_yes
from prose_sim.seeding import rng_for
from prose_sim.templating import render, render_repeated, render_template
from prose_sim.world.personas import Persona


class SimulatedUser(Actor):
    name = "user"
    subscribes = (InstanceStarted, DraftProduced)
    quiet = (InstanceStarted,)
    stages: ClassVar[dict[type[Event], str]] = {DraftProduced: "demonstrate"}

    def __init__(self, ctx: ActorContext):
        super().__init__(ctx)
        self._instances: dict[int, InstanceStarted] = {}

    async def handle(self, event: Event) -> None:
        match event:
            case InstanceStarted():
                self._instances[event.instance] = event
            case DraftProduced():
                accepted, text = await self._demonstrate(event)
                await self.ctx.bus.publish(
                    DemonstrationProduced(instance=event.instance, text=text, accepted=accepted)
                )

    async def _demonstrate(self, draft: DraftProduced) -> tuple[bool, str]:
        """(accepted, user text) for a draft: the user edits it or writes its own text."""
        instance = self._instances.pop(draft.instance)
        persona = self.ctx.personas[instance.persona]
        behaviour = persona.behaviour
        edits = behaviour.edit if behaviour.edit is not None else self.ctx.framework == "prelude"
        preferences = self._shown_preferences(persona, instance)
        context = dict(
            task=self.ctx.task,
            framework=self.ctx.framework,
            document=instance.document,
            preferences=preferences,
        )
        system = render_repeated("draft_system", task=self.ctx.task, framework=self.ctx.framework)
        if edits:
            return await self._accept_or_edit(draft, system, context, behaviour.template)
        system, prompt = task_messages(
            self.ctx.task,
            self.ctx.framework,
            instance.document,
            preferences,
            template=behaviour.template,
        )
        answer = await self.ctx.models.complete(
            "user", "demonstrate", draft.instance, prompt, system=system
        )
        return False, written_text(self.ctx.framework, answer.text)

    async def _accept_or_edit(
        self, draft: DraftProduced, system: str, context: dict, template: str
    ) -> tuple[bool, str]:
        """(accepted, user text): ask whether the draft will do; if not, ask for the edit."""
        prompt = render("prelude_accept", draft=draft.text, **context)
        answer = await self.ctx.models.complete(
            "user", "accept", draft.instance, prompt, system=system
        )
        if parse_yes(answer.text):
            return True, draft.text
        prompt = render_template(template or "prelude_edit", draft=draft.text, **context)
        edited = await self.ctx.models.complete(
            "user", "edit", draft.instance, prompt, system=system
        )
        return False, edited.text.strip()

    def _shown_preferences(self, persona: Persona, instance: InstanceStarted) -> str:
        """The components this demonstration follows: all, unless the persona is noisy."""
        p = persona.behaviour.ignore_probability
        if p == 0:
            return persona.preferences
        rng = rng_for(
            self.ctx.seed,
            "ignore",
            persona.framework,
            persona.task,
            persona.name,
            instance.document_id,
        )
        return "; ".join(c for c in persona.components if rng.random() >= p)
