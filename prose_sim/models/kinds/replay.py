"""The replay kind: what serves every role when a run is replayed from its log.

Not a name a scenario can give: ``replay`` (``prepare(..., replay=...)``) puts
every role on it. The roles keep their model names and sampling (hence the same
requests and request hashes); the gateway serves each request its recorded
answer, and one backend that holds nothing (``UnrecordedBackend``) gets what the
log lacks, refuses it and counts it. No model is loaded and no key is read.
"""

from __future__ import annotations

from prose_sim.config.models import ModelSpec
from prose_sim.models.recorded import UnrecordedBackend
from prose_sim.models.registry import BackendKind, Parts, Served

REPLAY_KEY = "replay"


class ReplayKind(BackendKind):
    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        if REPLAY_KEY not in parts.backends:  # one for every role
            parts.add(REPLAY_KEY, UnrecordedBackend())
        return Served(key=REPLAY_KEY)
