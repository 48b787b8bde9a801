"""CIPHER (Gao et al., 2024): learn a short preference from each edit, reuse it on similar tasks.

- retrieve: take the preferences learned on the most similar earlier instances
  (cipher1: the single best; cipherN: the best 3, always aggregated by the model,
  even when only one is found, as the released code does);
- learn: if the user's text differs from the draft, ask the model for a short
  preference that explains the revision (shown the draft and the user's text,
  not the document); otherwise keep the one used. The whole reply is the preference.

Knobs (docs/fidelity.md) restore the released code's ways: ``retrieved_order`` and
``merge_list`` (CIPHER-N's merge list, oldest first, an empty preference shown as None),
``answer_normalisation`` (the reply verbatim), ``text_equality`` and ``preference_lines``.
"""

from __future__ import annotations

from typing import ClassVar

from prose_sim.actors.inferrers.base import (
    CallEstimate,
    Inferrer,
    Learned,
    Retrieved,
    same_text,
)
from prose_sim.actors.inferrers.memory import released_order
from prose_sim.config.methods import CipherSettings
from prose_sim.parsing import parse_phrase


def _verbatim(text: str) -> str:
    """The released CIPHER's reading of a reply: all of it, as it is."""
    return text


class Cipher(Inferrer):
    settings_type = CipherSettings
    settings: CipherSettings
    default_merged: ClassVar[int] = 1

    @classmethod
    def expected_calls(cls, settings, agent_model, earlier, components):
        """One infer call; a merge once two earlier instances exist (more than one merged)."""
        assert isinstance(settings, CipherSettings)
        merged = settings.num_merged or cls.default_merged
        return CallEstimate(1.0 + (merged > 1 and earlier >= 2), earlier > 0)

    @property
    def num_merged(self) -> int:
        return self.settings.num_merged or self.default_merged

    @property
    def released_answers(self) -> bool:
        return self.settings.answer_normalisation == "released"

    def _retrieved(self, preferences: str, personas: list[str]) -> Retrieved:
        lines = None
        if self.settings.preference_lines == "as_inferred":
            lines = [preferences] if preferences else []
        return Retrieved(preferences=preferences, retrieved=personas, components=lines)

    async def retrieve(self, instance):
        items = await self.recall(instance, self.num_merged)
        if self.settings.retrieved_order == "released":
            items = released_order(items, self.settings.retrieval_mode)
        personas = [m.persona for m in items]
        if self.num_merged == 1:
            return self._retrieved(items[0].preferences if items else "", personas)
        if self.settings.merge_list == "released":
            # CipherNAgent.complete: every retrieved preference, an empty one shown as None
            # (in_natural_language of an empty set); merged whenever any is retrieved
            shown: list[str | None] = [m.preferences or None for m in items]
        else:
            shown = [m.preferences for m in items if m.preferences]
        if not shown:
            return self._retrieved("", personas)
        merged = await self.ask(
            "merge",
            instance.instance,
            "cipher_merge",
            _verbatim if self.released_answers else parse_phrase,
            preference_sets=shown,
        )
        if merged is None:  # unparseable: the learned preferences, joined
            merged = "; ".join(p for p in shown if p)
        return self._retrieved(merged, personas)

    async def learn(self, instance, draft, demonstration):
        if same_text(draft.text, demonstration.text, self.settings.text_equality or "words"):
            learned = draft.preferences
        else:
            inferred = await self.ask(
                "infer",
                instance.instance,
                "cipher_infer",
                _verbatim if self.released_answers else parse_phrase,
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
