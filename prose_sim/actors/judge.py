"""The judge: scores each draft against the user's text and true preferences."""

from __future__ import annotations

from prose_sim.actors.base import Actor
from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    Event,
    InstanceStarted,
    MetricsComputed,
    PreferencesRetrieved,
)
from prose_sim.metrics.text import word_levenshtein


class Judge(Actor):
    name = "judge"
    subscribes = (InstanceStarted, PreferencesRetrieved, DraftProduced, DemonstrationProduced)
    stages = {DemonstrationProduced: "score"}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._personas: dict[int, str] = {}
        self._retrieved: dict[int, list[str]] = {}
        self._drafts: dict[int, DraftProduced] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, InstanceStarted):
            self._personas[event.instance] = event.persona
        elif isinstance(event, PreferencesRetrieved):
            self._retrieved[event.instance] = event.retrieved
        elif isinstance(event, DraftProduced):
            self._drafts[event.instance] = event
        elif isinstance(event, DemonstrationProduced):
            draft = self._drafts.pop(event.instance)
            persona = self._personas.pop(event.instance)
            retrieved = self._retrieved.pop(event.instance, [])
            distance, normalized = word_levenshtein(draft.text, event.text)
            metrics = {
                "levenshtein": float(distance),
                "levenshtein_norm": normalized,
                "preference_length": float(len(draft.preferences)),
                "accepted": float(event.accepted),
            }
            if retrieved:  # share of the earlier instances drawn on that were this user's
                metrics["retrieval_accuracy"] = sum(p == persona for p in retrieved) / len(retrieved)
            await self.ctx.bus.publish(MetricsComputed, instance=event.instance, metrics=metrics)
