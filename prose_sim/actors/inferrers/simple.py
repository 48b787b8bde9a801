"""The two reference points of every table: no learning, and the oracle."""

from __future__ import annotations

from prose_sim.actors.inferrers.base import CallEstimate, Inferrer, Learned, Retrieved


class NoLearning(Inferrer):
    """Drafts with no preferences and learns nothing: the floor."""

    learns = False

    @classmethod
    def expected_calls(cls, settings, agent_model, earlier, components):
        return CallEstimate(0.0, False)

    async def retrieve(self, instance):
        return Retrieved(preferences="")

    async def learn(self, instance, draft, demonstration):
        return Learned(preferences="")


class Oracle(Inferrer):
    """Drafts with the user's true preferences: the ceiling."""

    learns = False

    @classmethod
    def expected_calls(cls, settings, agent_model, earlier, components):
        return CallEstimate(0.0, True)

    async def retrieve(self, instance):
        return Retrieved(preferences=self.ctx.personas[instance.persona].preferences)

    async def learn(self, instance, draft, demonstration):
        persona = self.ctx.personas[instance.persona]
        return Learned(preferences=persona.preferences, components=list(persona.components))
