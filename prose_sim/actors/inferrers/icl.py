"""In-context learning: show the user's earlier (document, text) pairs as examples.

Each example shows its own document by default. The released code's task
prompt repeats the *current* document in every example;
``icl_example_document = "current"`` restores that (scenarios/paper.toml sets it).
Examples are listed best first by default; ``retrieved_order = "released"`` lists them
as the released ICL agent does (``in_context_learning.py``: as its retriever returns
them, i.e. the oldest first under exact_match).
"""

from __future__ import annotations

from collections.abc import Sequence

from prose_sim.actors.inferrers.base import CallEstimate, Inferrer, Learned, Retrieved
from prose_sim.actors.inferrers.memory import MemoryItem, released_order
from prose_sim.config.methods import IclSettings
from prose_sim.events import InstanceStarted

DEFAULT_EXAMPLES = 5


def icl_examples(
    items: Sequence[MemoryItem], instance: InstanceStarted, document: str
) -> list[tuple[str, str]]:
    """(document, user text) examples; ``document``: "own" (each its own) or "current"."""
    return [
        (instance.document if document == "current" else m.document, m.user_text) for m in items
    ]


class Icl(Inferrer):
    settings_type = IclSettings
    settings: IclSettings

    @classmethod
    def expected_calls(cls, settings, agent_model, earlier, components):
        return CallEstimate(0.0, False)  # examples, no inference

    async def retrieve(self, instance):
        items = await self.recall(instance, self.settings.num_examples or DEFAULT_EXAMPLES)
        if self.settings.retrieved_order == "released":
            items = released_order(items, self.settings.retrieval_mode)
        return Retrieved(
            preferences="",
            examples=icl_examples(items, instance, self.settings.icl_example_document or "own"),
            retrieved=[m.persona for m in items],
        )

    async def learn(self, instance, draft, demonstration):
        self.remember(instance, demonstration.text)
        return Learned(preferences="")
