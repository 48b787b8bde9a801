"""Fault injection: a wrapper around any backend that fails, stalls and garbles, seeded.

Use it from a scenario (``[models.agent.faults]``) or in tests to check that
failures are retried, recorded and counted, never a crash. Whether an attempt
fails depends only on (seed, episode, instance, purpose, request content,
attempt number), so a faulty run is as reproducible as a clean one.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import anyio
import msgspec

from prose_sim.config.models import FaultSettings
from prose_sim.errors import InjectedFailure
from prose_sim.models.protocol import Backend, Completion, ModelRequest
from prose_sim.seeding import derive_seed

# What a model says when it does not follow the format (refusals, cut-off answers, noise).
MALFORMED = (
    "I'm sorry, but I can't help with that request.",
    "",
    "As an AI language model, I",
    '```json\n{"error": ',
    "\u2047\u2047\u2047",
)


class FaultyBackend:
    def __init__(self, inner: Backend, settings: FaultSettings):
        self.inner = inner
        self.settings = settings
        self.injected: Counter[str] = Counter()  # failure, spike, malformed
        self._attempts: dict[tuple[str, int, str, str], int] = defaultdict(int)

    async def complete(self, request: ModelRequest) -> Completion:
        s = self.settings
        key = (request.episode_id, request.instance, request.purpose, request.content_hash())
        attempt = self._attempts[key]
        self._attempts[key] += 1
        rng = random.Random(derive_seed(s.seed, *map(str, key), str(attempt)))
        fail, spike, garble = rng.random(), rng.random(), rng.random()
        if spike < s.latency_spike_rate:
            self.injected["spike"] += 1
            await anyio.sleep(s.latency_spike_s)
        if fail < s.failure_rate:
            self.injected["failure"] += 1
            raise InjectedFailure("injected failure (fault injection)")
        completion = await self.inner.complete(request)
        if garble < s.malformed_rate:
            self.injected["malformed"] += 1
            return msgspec.structs.replace(completion, text=rng.choice(MALFORMED))
        return completion

    async def aclose(self) -> None:
        """Closes the backend it wraps."""
        await self.inner.aclose()
