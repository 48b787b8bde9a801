"""CIPHER (Gao et al., 2024): learn a short preference from each edit, reuse it on similar tasks.

- retrieve: take the preferences learned on the most similar earlier instances
  (cipher1: the single best; cipherN: the best 3, always aggregated by the model,
  even when only one is found, as the released code does);
- learn: if the user's text differs from the draft, ask the model for a short
  preference that explains the revision (shown the draft and the user's text,
  not the document); otherwise keep the one used. The whole reply is the preference.
"""

from __future__ import annotations

from typing import ClassVar

from prose_sim.actors.inferrers.base import Inferrer, Learned, Retrieved
from prose_sim.parsing import parse_phrase


def same_text(a: str, b: str) -> bool:
    return a.split() == b.split()


class Cipher(Inferrer):
    knobs = frozenset({"num_merged"})
    default_merged: ClassVar[int] = 1

    @property
    def num_merged(self) -> int:
        return self.settings.num_merged or self.default_merged

    async def retrieve(self, instance):
        items = await self.recall(instance, self.num_merged)
        learned = [m.preferences for m in items if m.preferences]
        personas = [m.persona for m in items]
        if not learned:
            return Retrieved(preferences="", retrieved=personas)
        if self.num_merged == 1:
            return Retrieved(preferences=learned[0], retrieved=personas)
        merged = await self.ask(
            "merge", instance.instance, "cipher_merge", parse_phrase, preference_sets=learned
        )
        return Retrieved(preferences=merged or "; ".join(learned), retrieved=personas)

    async def learn(self, instance, draft, demonstration):
        if same_text(draft.text, demonstration.text):
            learned = draft.preferences
        else:
            inferred = await self.ask(
                "infer",
                instance.instance,
                "cipher_infer",
                parse_phrase,
                draft=draft.text,
                user_text=demonstration.text,
            )
            learned = inferred if inferred is not None else draft.preferences
        self.remember(instance, demonstration.text, learned, [learned] if learned else [])
        return Learned(preferences=learned, components=[learned] if learned else [])


class Cipher1(Cipher):
    default_merged = 1


class CipherN(Cipher):
    default_merged = 3
