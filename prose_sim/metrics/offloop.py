"""CPU-bound metric work, off the event loop, in one worker thread, a batch at a time.

The judges' text metrics (tokenizing and checking a draft and a user text) take about half a
millisecond an instance: run on the loop, a thousand episodes' scoring would stall it; handed
to a thread one instance at a time, each hand-over costs a wake-up of the thread, one of the
loop and passes of the GIL between them: the 1,000-episode case of bench overhead used 271-278
CPU µs a model call so, and 192-194 with the batches below (the same sitting, alternated).

Here the calls wait in a queue while the thread computes; when it is done, the next ones
(up to ``BATCH``, oldest first) go to it as one batch. One thread, as under the GIL more
would compute no faster. Each caller gets its own call's result: what it gets never depends
on how the calls were batched.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

# calls a batch takes at most: uncapped, the 10,000-episode case of bench overhead sent all
# its first scorings (9,999) as one batch, and the judges then all resumed at once with their
# questions: peak RSS 1,037 MB, against 561 MB at 16 a batch (560 at 8, 564 at 128) and 579
# with a thread hop per call. Per call, 16 costs the same CPU as 8 (201 µs at 1,000 episodes)
BATCH = 16

_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def _run_all(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
    """Each job's (True, result) or (False, the exception it raised), in order."""
    outcomes: list[tuple[bool, Any]] = []
    for function, args in jobs:
        try:
            outcomes.append((True, function(*args)))
        except Exception as exc:  # the caller's to raise, not the batch's
            outcomes.append((False, exc))
    return outcomes


class OffLoop:
    """Runs ``call``s in one worker thread, batched; ``serve`` runs in a task of the run's for
    as long as calls may come."""

    def __init__(self) -> None:
        self._pending: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None  # set when a call comes to an idle server

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` computed in the worker thread; its exception raised here."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((function, args, future))
        if self._arrived is not None:
            self._arrived.set()
        return await future

    async def serve(self) -> None:
        """Compute what is queued, batch after batch, until cancelled."""
        while True:
            if not self._pending:
                self._arrived = asyncio.Event()
                await self._arrived.wait()
                self._arrived = None
            pending = self._pending
            batch = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
            outcomes = await anyio.to_thread.run_sync(
                _run_all, [(function, args) for function, args, _ in batch]
            )
            for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
