"""The retry policy: the scenario's ``[retry]`` table and what the gateway retries by.

One Struct for both, so a scenario's settings reach the gateway without a
field-by-field copy.
"""

from __future__ import annotations

import random
from typing import Annotated

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    backoff_s: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    max_backoff_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # per attempt, the whole attempt (a server trickling bytes cannot extend it); None: for a
    # remote server 60 s + 0.2 s per max_new_tokens (openai_compat.default_timeout_s; 512
    # tokens: 162 s), no deadline for in-process backends
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # the longest wait a server's Retry-After gets; a longer one waits this long (said once)
    max_retry_after_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    # the circuit breaker: stop the run (exit 1, resumable) when a role's last N calls
    # all failed after their retries; 0 turns it off
    breaker_calls: Annotated[int, msgspec.Meta(ge=0)] = 10

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
