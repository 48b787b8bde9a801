"""An example prose_sim inference method: keep the most frequent components seen so far.

prose_sim imports ``FrequentComponents`` (named by this package's
``prose_sim.methods`` entry point, ``frequent``) when a scenario asks for
``[methods.frequent]``. Like every method it implements the paper's two steps:

- retrieve (before the draft): count the components learned on the earlier
  instances the retrieval mode allows (with ``exact_match``, this user's) and
  draft with the ``keep`` most frequent (a knob of its own, default 3), ties
  going to the most recent;
- learn (after the user's text): ask the agent's model, with CIPHER's prompt,
  what the user's revision of the draft says about their preferences, split the
  answer into components at ``;`` and remember them with this instance.

It uses only the public method interface: ``Inferrer`` and its helpers
``recall``, ``remember`` and ``ask``, ``Retrieved`` / ``Learned``, and
``MethodSettings``, which its own settings Struct extends: a scenario sets
``keep`` in the method's table (``[methods.frequent] keep = 5``), loading checks
its type, and ``methods list`` shows it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Annotated

import msgspec

from prose_sim.actors.inferrers.base import Inferrer, Learned, Retrieved
from prose_sim.config import MethodSettings
from prose_sim.parsing import parse_phrase

KEEP = 3  # components drafted with, by default
LOOKBACK = 50  # earlier instances counted


class FrequentSettings(MethodSettings, kw_only=True):
    """The method's table: ``method``, ``retrieval_mode`` and its own knob."""

    # the number of components drafted with
    keep: Annotated[int, msgspec.Meta(ge=1)] = KEEP


def components_of(answer: str) -> list[str]:
    """The components of a preference answer: its ``;``-separated parts, trimmed, without repeats."""
    seen: dict[str, str] = {}
    for part in answer.split(";"):
        text = part.strip().rstrip(".").strip()
        if text:
            seen.setdefault(text.lower(), text)
    return list(seen.values())


def most_frequent(learned: Iterable[list[str]], keep: int = KEEP) -> list[str]:
    """The ``keep`` components found in most of the lists (compared case-insensitively),
    ties going to the one seen first (the lists come most recent first)."""
    counts: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    for components in learned:
        for component in components:
            key = component.lower()
            spelling.setdefault(key, component)
            counts[key] += 1
    return [spelling[key] for key, _ in counts.most_common(keep)]


class FrequentComponents(Inferrer):
    """Drafts with the most frequent components learned so far (knobs: ``keep``,
    ``retrieval_mode``)."""

    settings_type = FrequentSettings
    settings: FrequentSettings

    async def retrieve(self, instance):
        items = await self.recall(instance, LOOKBACK)
        top = most_frequent((m.components for m in items), self.settings.keep)
        return Retrieved(preferences="; ".join(top), retrieved=[m.persona for m in items])

    async def learn(self, instance, draft, demonstration):
        answer = await self.ask(
            "infer",
            instance.instance,
            "cipher_infer",
            parse_phrase,
            draft=draft.text,
            user_text=demonstration.text,
        )
        components = components_of(answer or "")
        preferences = "; ".join(components)
        self.remember(instance, demonstration.text, preferences, components)
        return Learned(preferences=preferences, components=components)
