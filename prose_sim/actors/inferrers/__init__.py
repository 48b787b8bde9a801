"""Preference inference methods, one file each, registered by name."""

from __future__ import annotations

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.actors.inferrers.simple import NoLearning, Oracle

METHODS: dict[str, type[Inferrer]] = {
    "no_learning": NoLearning,
    "oracle": Oracle,
}
