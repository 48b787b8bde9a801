"""What a run spends, and the gateway layer that keeps it within the ``[budget]``.

``Spend`` is the one account: USD at the roles' prices, the calls sent to a model and
their tokens. An answer from the response cache spends nothing; a call that failed after
its retries spends one call (its tokens are not known). The same account is kept from the
log (``Spend.of``: summary.json, the progress display, a resumed run's spend so far) and by
the ``Budget`` layer as the calls end.

The ``Budget`` layer (``models.layers``) sends a call to its backend only while the spend so far, plus the
most that the calls in flight and this one can still cost, stays within every limit: the
most a call can cost is one call, its prompt's estimated tokens
(``models.tokens.estimate_request_tokens``) plus its ``max_new_tokens``, at its role's
prices. A call that does not fit waits for calls in flight to end (each ends costing what
it cost, usually much less than the most); once nothing is in flight and it still does
not fit, the budget is reached and the run is stopped through the gateway's ``RunStop``
(kind ``"budget"``). So no call in flight is cut off (their answers are logged) and the
spend never passes the budget, but for a prompt whose tokens the server counts above the
estimate.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
import msgspec

from prose_sim.config.budget import BudgetSettings
from prose_sim.events import Event, ModelFailed, ModelResponded
from prose_sim.models.protocol import ModelRequest
from prose_sim.models.tokens import estimate_request_tokens


class Spend(msgspec.Struct, kw_only=True):
    """USD, calls sent to a model (answered or failed) and their input + output tokens."""

    usd: float = 0.0
    calls: int = 0
    tokens: int = 0

    def add(self, other: Spend) -> None:
        self.usd += other.usd
        self.calls += other.calls
        self.tokens += other.tokens

    def take(self, other: Spend) -> None:
        self.usd -= other.usd
        self.calls -= other.calls
        self.tokens -= other.tokens

    def observe(self, event: Event) -> None:
        """Count a model call's event (others are ignored)."""
        match event:
            case ModelResponded(cached=False):
                self.usd += event.cost_usd
                self.calls += 1
                self.tokens += event.input_tokens + event.output_tokens
            case ModelFailed():
                self.calls += 1

    @classmethod
    def of(cls, events: Iterable[Event]) -> Spend:
        spend = cls()
        for event in events:
            spend.observe(event)
        return spend

    def rounded(self) -> Spend:
        return Spend(usd=round(self.usd, 6), calls=self.calls, tokens=self.tokens)

    def over(self, budget: BudgetSettings) -> list[str]:
        """The limits of ``budget`` this spend passes, as ``key (value > limit)``."""
        out = []
        if budget.max_usd is not None and self.usd > budget.max_usd + 1e-12:
            out.append(f"max_usd (${self.usd:,.4f} > ${budget.max_usd:,.4f})")
        if budget.max_calls is not None and self.calls > budget.max_calls:
            out.append(f"max_calls ({self.calls:,} > {budget.max_calls:,})")
        if budget.max_tokens is not None and self.tokens > budget.max_tokens:
            out.append(f"max_tokens ({self.tokens:,} > {budget.max_tokens:,})")
        return out

    def reached(self, budget: BudgetSettings) -> list[str]:
        """The limits of ``budget`` this spend has reached (no further call fits them)."""
        out = []
        if budget.max_usd is not None and self.usd >= budget.max_usd - 1e-12:
            out.append("max_usd")
        if budget.max_calls is not None and self.calls >= budget.max_calls:
            out.append("max_calls")
        if budget.max_tokens is not None and self.tokens >= budget.max_tokens:
            out.append("max_tokens")
        return out


def budget_text(spend: Spend, budget: BudgetSettings) -> str:
    """``$0.0123 of $0.50, 40 of 50 calls, 12,000 of 100,000 tokens``: each limit set."""
    parts = []
    if budget.max_usd is not None:
        parts.append(f"${spend.usd:,.4f} of ${budget.max_usd:,.4f}")
    if budget.max_calls is not None:
        parts.append(f"{spend.calls:,} of {budget.max_calls:,} calls")
    if budget.max_tokens is not None:
        parts.append(f"{spend.tokens:,} of {budget.max_tokens:,} tokens")
    return ", ".join(parts)


class BudgetState:
    """The run's spend against its budget, shared by every backend's ``Budget`` layer:
    spent (``spent``, from the log of a resumed run on) and held for the calls in flight."""

    def __init__(self, budget: BudgetSettings, spent: Spend | None = None):
        self.budget = budget
        self.spent = spent or Spend()
        self.held = Spend()  # the most the calls in flight can cost
        self.in_flight = 0
        self._changed = anyio.Event()

    @staticmethod
    def most(request: ModelRequest, price: tuple[float, float]) -> Spend:
        """The most a call can cost: one call, its prompt's estimated tokens and its
        ``max_new_tokens``, at ``price`` (USD per million input / output tokens)."""
        tokens = estimate_request_tokens(request)  # the prompt's estimate + max_new_tokens
        answer = request.params.max_new_tokens
        usd = ((tokens - answer) * price[0] + answer * price[1]) / 1e6
        return Spend(usd=usd, calls=1, tokens=tokens)

    def fits(self, most: Spend) -> bool:
        total = Spend()
        total.add(self.spent)
        total.add(self.held)
        total.add(most)
        return not total.over(self.budget)

    def hold(self, most: Spend) -> None:
        self.held.add(most)
        self.in_flight += 1

    def settle(self, most: Spend, spent: Spend) -> None:
        """A call ended: what it held is released, what it spent is counted; waiters look again."""
        self.held.take(most)
        self.spent.add(spent)
        self.in_flight -= 1
        self.wake()

    async def changed(self) -> None:
        await self._changed.wait()

    def wake(self) -> None:
        """Every call waiting looks again (the run was stopped)."""
        self._changed.set()
        self._changed = anyio.Event()

    def reached_message(self, role: str, purpose: str, most: Spend) -> str:
        return (
            f"the [budget] is reached: the run spent {budget_text(self.spent, self.budget)}, "
            f"and the next call ({role}/{purpose}) may cost up to ${most.usd:,.4f} and "
            f"{most.tokens:,} tokens"
        )
