"""In-context learning: show the user's earlier (document, text) pairs as examples.

Each example shows its own document. (The released reference code repeats
the current document in every example; we do not copy that defect.)
"""

from __future__ import annotations

from prose_sim.actors.inferrers.base import Inferrer, Learned, Retrieved

DEFAULT_EXAMPLES = 5


class Icl(Inferrer):
    knobs = frozenset({"num_examples"})

    async def retrieve(self, instance):
        items = await self.recall(instance, self.settings.num_examples or DEFAULT_EXAMPLES)
        return Retrieved(
            preferences="",
            examples=[(m.document, m.user_text) for m in items],
            retrieved=[m.persona for m in items],
        )

    async def learn(self, instance, draft, demonstration):
        self.remember(instance, demonstration.text)
        return Learned(preferences="")
