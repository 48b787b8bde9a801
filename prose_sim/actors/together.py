"""Independent model calls run together, and one failure does not cancel the others.

A judge's PPCM questions and a PROSE validation sweep are sent at once. If one of
them fails for good, its siblings are left to finish: their answers are already
being paid for, and once they are in the log a replay meets exactly the calls the
run made (a cancelled sibling would leave a request with no recorded answer,
which a replay, where answers come instantly, would then ask for). The first
failure in the calls' order is raised once all have ended, so the failed step
reads the same at any concurrency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio


async def run_together(calls: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Await every call concurrently; then raise the first failure, in order, if any."""
    errors: list[Exception | None] = [None] * len(calls)

    async def one(index: int, call: Callable[[], Awaitable[object]]) -> None:
        try:
            await call()
        except Exception as exc:  # kept for after the others; cancellation still propagates
            errors[index] = exc

    if len(calls) == 1:
        await one(0, calls[0])
    elif calls:
        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls[1:], 1):
                group.start_soon(one, index, call)
            # the first in this task, one task fewer to start: it starts first, as it would
            # among the others (a task group starts its tasks in order)
            await one(0, calls[0])
    for error in errors:
        if error is not None:
            raise error
