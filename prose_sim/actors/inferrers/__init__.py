"""Preference inference methods, one file each, registered by name."""

from __future__ import annotations

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.actors.inferrers.cipher import Cipher1, CipherN
from prose_sim.actors.inferrers.fixed_subset import FixedSubset
from prose_sim.actors.inferrers.icl import Icl
from prose_sim.actors.inferrers.prose import IclProse, Prose
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.actors.inferrers.simple import NoLearning, Oracle

METHODS: dict[str, type[Inferrer]] = {
    "no_learning": NoLearning,
    "oracle": Oracle,
    "cipher1": Cipher1,
    "cipherN": CipherN,
    "icl": Icl,
    "prose": Prose,
    "icl+prose": IclProse,
    "fixed_subset": FixedSubset,
}


def check_settings(method: str, settings: MethodSettings) -> tuple[str, str] | None:
    """(knob, reason) for the first setting the method does not take, else None."""
    cls = METHODS[method]
    for knob in sorted(settings.given()):
        if knob not in cls.allowed_knobs():
            return knob, f"not a setting of method {method!r}"
    check = getattr(cls, "check", None)
    return check(settings) if check else None
