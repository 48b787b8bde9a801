"""Several endpoints serving one model, as one backend.

``EndpointPool`` holds member backends (each an ``OpenAIBackend`` for one
``base_url`` of ``models.ROLE.base_urls``) and sends each request to the
healthy member with the fewest outstanding requests (ties: round-robin).

Each member has its own ``EndpointLayers`` (its own rpm / tpm / adaptive
concurrency cap), which the pool applies around the member's call with the
same ``enter`` / ``exit`` protocol and the same outcome classification (ok,
throttled, failed) as the gateway. The gateway therefore has no layers for
the pool's key: it applies its retries, cache and accounting to the pool once,
and the limits are applied once, per member.

Health (a circuit breaker per member): a failure that looks like the endpoint
being down (a ``ModelCallError`` that is retryable and not throttled:
connection refused or dropped, 5xx, the backend's timeout; or the gateway's
per-attempt timeout expiring) counts; a success or a 429 (the endpoint is up)
resets the count; other errors (400, 401, ...) leave it as it is. After
``failures_to_eject`` consecutive failures the member is taken out for
``cooldown_s``, doubled on each ejection that follows without a success in
between, up to ``max_cooldown_s``. When its cooldown has passed, the next
request goes to it as the one probe (half-open): success puts it back, failure
takes it out again. A failed request is re-raised, so the gateway's retry picks
a member again (usually another one). When every member is out, the one whose
cooldown ends first serves rather than the request failing outright.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import anyio
import msgspec

from prose_sim.errors import ModelCallError
from prose_sim.models.limits import EndpointLayers, EndpointLimits
from prose_sim.models.protocol import Backend, Completion, ModelRequest
from prose_sim.models.tokens import estimate_request_tokens


class PoolSettings(msgspec.Struct, frozen=True, kw_only=True):
    failures_to_eject: int = 3  # consecutive endpoint failures that take a member out
    cooldown_s: float = 10.0  # how long the first ejection lasts
    max_cooldown_s: float = 160.0  # repeated ejections double the cooldown up to this


DEFAULT_POOL = PoolSettings()  # frozen: one shared default


class PoolMember:
    """One endpoint of a pool: its backend, its layers and its health.

    A member may be shared by several pools naming the same endpoint (and key
    variable), so its outstanding count and health are the endpoint's.
    """

    def __init__(self, name: str, backend: Backend, layers: EndpointLayers | None = None):
        self.name = name
        self.backend = backend
        self.layers = layers
        self.outstanding = 0
        self.consecutive_failures = 0
        self.ejected_until: float | None = None  # None: healthy
        self.next_cooldown_s: float | None = None  # None: the pool's cooldown_s
        self.probing = False  # the one half-open request is in flight
        # stats
        self.requests = 0
        self.ok = 0
        self.failures = 0  # endpoint failures (see the module docstring)
        self.errors = 0  # every failed attempt, endpoint failures included
        self.ejections = 0
        self.outstanding_peak = 0

    def stats(self) -> dict[str, object]:
        return {
            "pool_requests": self.requests,
            "pool_ok": self.ok,
            "pool_errors": self.errors,
            "pool_endpoint_failures": self.failures,
            "pool_ejections": self.ejections,
            "pool_outstanding_peak": self.outstanding_peak,
            "pool_ejected": self.ejected_until is not None,
        }


class MemberLayers(EndpointLayers):
    """A pool member's layers; its stats add what the pool saw at that endpoint.

    Registered in ``BuiltModels.layers`` under the member's endpoint key, so
    ``summary.json``'s ``endpoints`` lists every member with its limits and
    health; no role routes to that key through a pool, so the gateway does not
    apply these layers to pooled calls (the pool does).
    """

    def __init__(self, limits: EndpointLimits, member: PoolMember):
        super().__init__(limits)
        self.member = member

    def stats(self) -> dict[str, object]:
        return {**super().stats(), **self.member.stats()}


class EndpointPool:
    """A backend over several endpoints of one model (see the module docstring)."""

    fails_over = True  # an unreachable member is taken out, not a reason to stop the run
    remote = True  # its members are remote servers: the gateway's default attempt deadline

    def __init__(
        self,
        members: Sequence[PoolMember],
        settings: PoolSettings = DEFAULT_POOL,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not members:
            raise ValueError("an endpoint pool needs at least one member")
        self.members = list(members)
        self.settings = settings
        self._clock = clock
        self._turn = 0  # round-robin among equally loaded members

    async def aclose(self) -> None:
        """Closes every member's backend (a member shared with another pool closes twice: harmless)."""
        for member in self.members:
            await member.backend.aclose()

    def stats(self) -> list[dict[str, object]]:
        return [{"endpoint": m.name, **m.stats()} for m in self.members]

    # --- choosing ----------------------------------------------------------------

    def _pick(self) -> tuple[PoolMember, bool]:
        """The member for the next request, and whether the request is its probe."""
        now = self._clock()
        n = len(self.members)
        start = self._turn
        self._turn = (self._turn + 1) % n
        order = [self.members[(start + i) % n] for i in range(n)]
        for member in order:  # a member whose cooldown has passed gets the next request
            if (
                member.ejected_until is not None
                and now >= member.ejected_until
                and not member.probing
            ):
                return member, True
        healthy = [m for m in order if m.ejected_until is None]
        if healthy:
            return min(healthy, key=lambda m: m.outstanding), False  # first of equals: round-robin
        # every member is out: the one back first serves (not as a probe)
        return min(self.members, key=lambda m: m.ejected_until or 0.0), False

    # --- health --------------------------------------------------------------------

    def _succeeded(self, member: PoolMember) -> None:
        member.consecutive_failures = 0
        member.ejected_until = None
        member.next_cooldown_s = None

    def _failed(self, member: PoolMember, probe: bool) -> None:
        member.failures += 1
        member.consecutive_failures += 1
        if probe or (
            member.ejected_until is None
            and member.consecutive_failures >= self.settings.failures_to_eject
        ):
            self._eject(member)

    def _eject(self, member: PoolMember) -> None:
        cooldown = member.next_cooldown_s or self.settings.cooldown_s
        member.ejected_until = self._clock() + cooldown
        member.next_cooldown_s = min(self.settings.max_cooldown_s, cooldown * 2)
        member.ejections += 1

    # --- serving -------------------------------------------------------------------

    async def complete(self, request: ModelRequest) -> Completion:
        member, probe = self._pick()
        member.requests += 1
        member.outstanding += 1
        member.outstanding_peak = max(member.outstanding_peak, member.outstanding)
        if probe:
            member.probing = True
        layers = member.layers
        try:
            estimate = estimate_request_tokens(request) if layers is not None else 0
            generation, charged = (await layers.enter(estimate)) if layers is not None else (0, 0.0)
            outcome, actual = "failed", None
            deadline = anyio.current_effective_deadline()
            try:
                completion = await member.backend.complete(request)
                outcome = "ok"
                actual = completion.input_tokens + completion.output_tokens
            except anyio.get_cancelled_exc_class():
                if not math.isinf(deadline) and anyio.current_time() >= deadline:  # a timeout
                    member.errors += 1
                    self._failed(member, probe)
                raise
            except Exception as exc:
                member.errors += 1
                if isinstance(exc, ModelCallError):
                    if exc.throttled:
                        outcome = "throttled"
                        self._succeeded(member)  # it answered: it is up
                    elif exc.retryable:
                        self._failed(member, probe)
                raise
            finally:
                if layers is not None:
                    layers.exit(generation, charged, outcome, actual)
            member.ok += 1
            self._succeeded(member)
            return completion
        finally:
            member.outstanding -= 1
            if probe:
                member.probing = False
