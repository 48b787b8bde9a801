"""A model server's totals as the run's summary shows them (both local servers)."""

from __future__ import annotations

import math

import msgspec

from prose_sim.events import BatchStats


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else math.nan


def served_totals(stats: msgspec.Struct, served: BatchStats, row_steps: int) -> dict[str, object]:
    """A server's totals as the summary shows them: its own fields, then the served batches'
    under the names the summary has always used, then the shares derived from them."""
    own = {k: v for k, v in msgspec.structs.asdict(stats).items() if k != "served"}
    return {
        **own,
        "requests": served.size,
        "prompt_tokens": served.prompt_tokens,
        "padded_tokens": served.padded_tokens,
        "generated_tokens": served.generated_tokens,
        "idle_row_steps": served.idle_row_steps,
        "steps": served.steps,
        "busy_s": served.wall_s,
        "queue_wait_s": served.queue_wait_s,
        "max_queue_wait_s": served.max_queue_wait_s,
        "generated_tokens_per_s": ratio(served.generated_tokens, served.wall_s),
        "mean_queue_wait_s": ratio(served.queue_wait_s, served.size),
        "padding_share": ratio(served.padded_tokens, served.prompt_tokens + served.padded_tokens),
        "idle_row_share": ratio(served.idle_row_steps, row_steps),
    }
