"""``backend = "scripted"``: the deterministic test double, one per role."""

from __future__ import annotations

from prose_sim.config.models import ModelSpec, ScriptedSpec
from prose_sim.models.backends.scripted import ScriptedBackend, ScriptedSettings
from prose_sim.models.registry import BackendKind, Parts, Served


class ScriptedKind(BackendKind):
    spec_type = ScriptedSpec

    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        assert isinstance(spec, ScriptedSpec)
        key = f"scripted:{role}"
        settings = ScriptedSettings(
            latency_s=spec.latency_s,
            latency_jitter=spec.latency_jitter,
            min_words=spec.min_words,
            max_words=spec.max_words,
        )
        parts.add(key, ScriptedBackend(settings))
        return Served(key=key)
