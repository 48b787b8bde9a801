"""fixed_subset: drafts with a given subset of the user's true components, learns nothing.

The agent of the paper's metric-validity study (the released code's
``SinglePreferenceAgent`` as ``scripts/compare_frameworks.py`` uses it): its
preferences are a known share of the truth, so a metric that measures preference
quality should rise with that share. ``subset`` is a list of component indices
(0-based, in the persona's order) or "powerset": one episode per subset of every
user's components, the empty set included (``episodes``, which the episode plan reads).
"""

from __future__ import annotations

from itertools import chain, combinations

import msgspec

from prose_sim.actors.inferrers.base import Inferrer, Learned, Retrieved
from prose_sim.config.methods import FixedSubsetSettings, MethodSettings

POWERSET = "powerset"


def powerset(n: int) -> list[tuple[int, ...]]:
    """Every subset of range(n), smallest first, each in index order (() included)."""
    return list(chain.from_iterable(combinations(range(n), r) for r in range(n + 1)))


def subset_label(label: str, subset: tuple[int, ...] | list[int]) -> str:
    """A method label per subset, e.g. ``fixed_subset[0+2]``, ``fixed_subset[]``."""
    return f"{label}[{'+'.join(str(i) for i in subset)}]"


class FixedSubset(Inferrer):
    """Drafts with the components ``settings.subset`` names; learns nothing."""

    settings_type = FixedSubsetSettings
    settings: FixedSubsetSettings
    learns = False
    expands_per_user = True

    @classmethod
    def check(cls, settings: MethodSettings) -> tuple[str, str] | None:
        assert isinstance(settings, FixedSubsetSettings)
        subset = settings.subset
        if isinstance(subset, list):
            if any(i < 0 for i in subset):
                return "subset", "component indices start at 0"
            if len(set(subset)) != len(subset):
                return "subset", "component indices must be distinct"
        return None

    @classmethod
    def episodes(
        cls, label: str, settings: MethodSettings, components: int
    ) -> list[tuple[str, MethodSettings]]:
        """One episode per subset of the user's components ("powerset", the default), each
        labelled by its subset; else one, as given."""
        assert isinstance(settings, FixedSubsetSettings)
        if settings.subset is not None and settings.subset != POWERSET:
            return [(label, settings)]
        return [
            (subset_label(label, s), msgspec.structs.replace(settings, subset=list(s)))
            for s in powerset(components)
        ]

    def _preferences(self, instance) -> tuple[str, list[str]]:
        persona = self.ctx.personas[instance.persona]
        subset = self.settings.subset if isinstance(self.settings.subset, list) else []
        chosen = [persona.components[i] for i in sorted(subset) if i < len(persona.components)]
        return "; ".join(chosen), chosen

    async def retrieve(self, instance):
        return Retrieved(preferences=self._preferences(instance)[0])

    async def learn(self, instance, draft, demonstration):
        preferences, components = self._preferences(instance)
        return Learned(preferences=preferences, components=components)
