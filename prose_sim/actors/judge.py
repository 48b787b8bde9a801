"""The judge: scores each draft against the user's text and true preferences."""

from __future__ import annotations

from prose_sim.actors.base import Actor
from prose_sim.events import DemonstrationProduced, DraftProduced, Event, MetricsComputed
from prose_sim.metrics.text import word_levenshtein


class Judge(Actor):
    name = "judge"
    subscribes = (DraftProduced, DemonstrationProduced)
    stages = {DemonstrationProduced: "score"}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._drafts: dict[int, DraftProduced] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, DraftProduced):
            self._drafts[event.instance] = event
        elif isinstance(event, DemonstrationProduced):
            draft = self._drafts.pop(event.instance)
            distance, normalized = word_levenshtein(draft.text, event.text)
            metrics = {
                "levenshtein": float(distance),
                "levenshtein_norm": normalized,
                "preference_length": float(len(draft.preferences)),
                "accepted": float(event.accepted),
            }
            await self.ctx.bus.publish(MetricsComputed, instance=event.instance, metrics=metrics)
