"""Per-endpoint limits shared by every backend on an endpoint.

Requests and tokens per window (leaky buckets, ``TokenBucket``; the token budget
is charged with an estimate before a call and corrected with the reported usage
after) and an adaptive concurrency cap that backs off on 429s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import msgspec

from prose_sim.config.budget import ShardingSettings


class EndpointLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits of one endpoint, shared by every backend that calls it."""

    # requests and tokens (input + output) per window; a shard's share may be a fraction
    rpm: float | None = None
    tpm: float | None = None
    window_s: float = 60.0
    max_concurrency: int = 100  # the adaptive cap never grows past this
    start_concurrency: int = 16
    # share of a full window's budget sent at once from a standstill; the rest is
    # headroom for requests that reach the provider later than they left (new
    # connections, network jitter), so its bucket never sees more than ours did
    burst: float = 0.9
    # a shard's share (``shard_share``): the account's limits divided by this many shards
    divided_by: int = 1


def shard_divisor(shard: tuple[int, int] | None, sharding: ShardingSettings | None) -> int:
    """By how many shards each endpoint's limits are divided: N under ``--shard K/N``, unless
    ``[sharding] split_limits = false``; 1 for a whole run."""
    if shard is None or (sharding is not None and not sharding.split_limits):
        return 1
    return shard[1]


def shard_share(limits: EndpointLimits, shards: int, *, cap_set: bool) -> EndpointLimits:
    """One of ``shards`` shards' share of an endpoint's limits, so that the shards sending
    at once stay within them together: ``rpm`` and ``tpm`` divided by ``shards`` (a
    fraction is kept: a budget below one request per window per shard still has its rate,
    and the bucket takes one request at a time), the concurrency cap divided and rounded
    down, never below 1 (``cap_set``: only a ``max_concurrency`` the scenario set: the
    default is this run's own concurrency, no account's)."""
    if shards <= 1:
        return limits
    cap = max(1, limits.max_concurrency // shards) if cap_set else limits.max_concurrency
    return msgspec.structs.replace(
        limits,
        rpm=limits.rpm / shards if limits.rpm else limits.rpm,
        tpm=limits.tpm / shards if limits.tpm else limits.tpm,
        max_concurrency=cap,
        start_concurrency=min(limits.start_concurrency, cap),
        divided_by=shards,
    )


class TokenBucket:
    """A leaky bucket: it holds up to ``capacity``, drains at ``rate`` per second, and a
    charge waits until it fits. Waiters are served first come, first served.

    ``clock`` (seconds; the event loop's by default) and ``sleep`` are given for tests.
    """

    def __init__(
        self,
        capacity: float,
        rate: float,
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    ):
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._level = 0.0
        self._checked = 0.0
        self._turn = anyio.Lock()

    @property
    def level(self) -> float:
        """What the bucket holds now."""
        self._drain()
        return self._level

    def _drain(self) -> None:
        now = self._clock()
        if self._level:
            self._level = max(0.0, self._level - (now - self._checked) * self.rate)
        self._checked = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0: it fits now)."""
        over = self.level + amount - self.capacity
        return over / self.rate if over > 0 else 0.0

    async def acquire(self, amount: float) -> None:
        """Charge ``amount`` (at most ``capacity``), waiting until it fits."""
        if not 0 <= amount <= self.capacity:
            raise ValueError(f"charge {amount} is not between 0 and the capacity {self.capacity}")
        async with self._turn:
            while (wait := self.wait_s(amount)) > 0:
                await self._sleep(wait)
            self._level += amount

    def adjust(self, delta: float) -> None:
        """Add ``delta`` to what the bucket holds (a refund when negative; never below 0)."""
        self._drain()
        self._level = max(0.0, self._level + delta)


def window_bucket(budget: float, limits: EndpointLimits) -> TokenBucket:
    """A leaky bucket with the budget's sustained rate and a burst of ``burst`` of it."""
    capacity = max(1.0, budget * limits.burst)
    return TokenBucket(capacity, budget / limits.window_s)


class AdaptiveConcurrency:
    """A concurrency cap that grows while the provider keeps up and halves on 429s.

    Additive growth: after ``limit`` successes in a row without a 429 the cap
    grows by a quarter (at least one), up to ``maximum``. A 429 halves it, once
    per generation: requests that started before the last halving do not halve
    it again (they saw the old, higher cap).
    """

    def __init__(self, start: int, maximum: int):
        self.maximum = max(1, maximum)
        self.limit = max(1, min(start, self.maximum))
        self.in_flight = 0
        self.generation = 0
        self.peak = self.limit
        self.halvings = 0
        self._successes = 0
        self._changed = anyio.Event()

    async def acquire(self) -> int:
        while self.in_flight >= self.limit:
            await self._changed.wait()
        self.in_flight += 1
        return self.generation

    def release(self, generation: int, outcome: str) -> None:
        """``outcome``: ok | throttled | failed."""
        self.in_flight -= 1
        if outcome == "ok":
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.maximum:
                self.limit = min(self.maximum, self.limit + max(1, self.limit // 4))
                self.peak = max(self.peak, self.limit)
                self._successes = 0
        elif outcome == "throttled" and generation == self.generation:
            self.limit = max(1, self.limit // 2)
            self.generation += 1
            self.halvings += 1
            self._successes = 0
        self._changed.set()
        self._changed = anyio.Event()


class _TokenBudget:
    """Tokens per window: a bucket charged with an estimate before the call and
    corrected with the reported usage after."""

    def __init__(self, bucket: TokenBucket):
        self.bucket = bucket

    async def acquire(self, estimate: int) -> float:
        amount = float(min(estimate, self.bucket.capacity))
        await self.bucket.acquire(amount)
        return amount

    def correct(self, charged: float, actual: int) -> None:
        self.bucket.adjust(actual - charged)


class EndpointLayers:
    """Rate limits (requests and tokens per window) and the adaptive concurrency
    cap of one endpoint; every backend on that endpoint goes through one."""

    def __init__(self, limits: EndpointLimits):
        self.limits = limits
        self.rpm = window_bucket(limits.rpm, limits) if limits.rpm else None
        self.tpm = _TokenBudget(window_bucket(limits.tpm, limits)) if limits.tpm else None
        self.concurrency = AdaptiveConcurrency(limits.start_concurrency, limits.max_concurrency)
        self.throttled = 0

    async def enter(self, estimate: int) -> tuple[int, float]:
        generation = await self.concurrency.acquire()
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1)
            charged = await self.tpm.acquire(estimate) if self.tpm is not None else 0.0
        except BaseException:
            self.concurrency.release(generation, "failed")
            raise
        return generation, charged

    def exit(self, generation: int, charged: float, outcome: str, actual: int | None) -> None:
        if outcome == "throttled":
            self.throttled += 1
        self.concurrency.release(generation, outcome)
        if self.tpm is not None and actual is not None:
            self.tpm.correct(charged, actual)

    def stats(self) -> dict[str, object]:
        c = self.concurrency
        return {
            "rpm": self.limits.rpm,
            "tpm": self.limits.tpm,
            "window_s": self.limits.window_s,
            "max_concurrency": self.limits.max_concurrency,
            # under run --shard K/N: this shard's share, the account's limits divided by N
            "divided_by": self.limits.divided_by,
            "throttled": self.throttled,
            "concurrency_limit": c.limit,
            "concurrency_peak": c.peak,
            "concurrency_halvings": c.halvings,
        }
