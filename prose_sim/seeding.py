"""Randomness that depends on what is simulated, never on scheduling order.

Every random choice in prose_sim draws from a generator seeded by
``derive_seed(scenario seed, key...)``; the key names what the choice is for
(an episode, a user's documents, a model request), so two runs of the same
scenario make the same choices whatever their concurrency.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *key: object) -> int:
    """A 64-bit seed from a scenario seed and a key (stable across processes)."""
    text = "\x1f".join([str(seed), *map(str, key)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def rng_for(seed: int, *key: object) -> random.Random:
    return random.Random(derive_seed(seed, *key))
