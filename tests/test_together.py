"""Independent calls sent together: a failure leaves the siblings to finish (so they are recorded)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from prose_sim.actors.together import run_together


@pytest.mark.anyio
async def test_a_failure_does_not_cancel_the_siblings_and_the_first_in_order_is_raised():
    finished = []
    first_failed = anyio.Event()

    async def fails(name: str) -> None:
        first_failed.set()
        raise ValueError(name)

    async def slow() -> None:
        await first_failed.wait()  # still running when its sibling has already failed
        finished.append("slow")

    with pytest.raises(ValueError, match=r"^early$"):
        await run_together([slow, lambda: fails("early"), lambda: fails("late")])
    assert finished == ["slow"]


@pytest.mark.anyio
async def test_no_failure_means_every_call_ran():
    ran = []

    async def call(i: int) -> None:
        ran.append(i)

    await run_together([lambda i=i: call(i) for i in range(3)])
    assert sorted(ran) == [0, 1, 2]


@pytest.mark.anyio
async def test_cancelling_the_caller_cancels_every_call():
    started, ended = [], []

    async def waits(i: int) -> None:
        started.append(i)
        try:
            await anyio.sleep_forever()
        finally:
            ended.append(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_together, [lambda i=i: waits(i) for i in range(3)])
        while len(started) < 3:
            await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    for _ in range(3):  # a cancelled call ends at its next step
        await anyio.lowlevel.checkpoint()
    assert sorted(ended) == [0, 1, 2]
