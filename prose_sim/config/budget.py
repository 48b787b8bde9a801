"""The ``[budget]`` and ``[sharding]`` tables: what a run may spend, and how shards share limits.

Neither changes what a run computes (the same answers, the same results), so neither is part
of the scenario's digest (``Scenario.digest``): a budget raised to resume a run stopped at it
does not make the run another one.
"""

from __future__ import annotations

from prose_sim.config.common import NonNegative, Positive, Strict


class BudgetSettings(Strict, kw_only=True):
    """Stop the run before its spend would pass any of these (unset: no limit). The spend is
    what the run's log records, over the whole run: a resumed run counts what it spent before
    the resume. A call answered from the response cache costs nothing; one answered from the
    log is counted as it was when it was first paid for."""

    # USD at the roles' input_price / output_price
    max_usd: NonNegative | None = None
    # model calls sent to a model (answered or failed after its retries)
    max_calls: Positive | None = None
    # input + output tokens of those calls, as the servers report them
    max_tokens: Positive | None = None

    @property
    def limited(self) -> bool:
        return self.max_usd is not None or self.max_calls is not None or self.max_tokens is not None


class ShardingSettings(Strict, kw_only=True):
    # under `run --shard K/N`, each endpoint's rpm, tpm and max_concurrency divided by N, so
    # that N shards against one account stay within its limits together; false: every shard
    # takes the whole of each limit (e.g. each shard has its own endpoints)
    split_limits: bool = True
