"""An actor's inbox: first in, first out, bounded, and a buffered event taken at once."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from prose_sim.inbox import Inbox, InboxClosed

pytestmark = pytest.mark.anyio


async def read_into(inbox: Inbox[int], got: list[int]) -> None:
    """The reader: every item, in order, until the inbox is closed and empty."""
    async for item in inbox:
        got.append(item)


def taken_without_yielding(inbox: Inbox[int]) -> int:
    """The next item, read by driving ``__anext__`` by hand: it must finish on its first step
    (a coroutine that suspends, e.g. at a checkpoint, would not)."""
    step = inbox.__anext__()
    with pytest.raises(StopIteration) as done:
        step.send(None)
    return done.value.value


async def test_items_come_out_in_order_and_a_buffered_one_without_yielding():
    inbox = Inbox[int](4)
    assert all(inbox.put_nowait(i) for i in range(3))
    assert [taken_without_yielding(inbox) for _ in range(3)] == [0, 1, 2]


async def test_a_reader_waits_while_empty_and_wakes_on_the_next_put():
    inbox = Inbox[int](4)
    got: list[int] = []

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_into, inbox, got)
        await anyio.lowlevel.checkpoint()  # the reader is waiting now
        assert got == []
        inbox.put_nowait(7)
        inbox.put_nowait(8)
        inbox.close()  # the reader ends once it has both
    assert got == [7, 8]


async def test_a_full_inbox_refuses_put_nowait_and_put_waits_for_room():
    inbox = Inbox[int](2)
    assert inbox.put_nowait(1) and inbox.put_nowait(2)
    assert not inbox.put_nowait(3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(inbox.put, 3)
        await anyio.lowlevel.checkpoint()
        assert inbox.get_nowait() == 1  # room: the waiting put goes in
    assert [inbox.get_nowait(), inbox.get_nowait()] == [2, 3]


async def test_get_nowait_says_empty_or_ended():
    inbox = Inbox[int](2)
    with pytest.raises(anyio.WouldBlock):
        inbox.get_nowait()
    inbox.put_nowait(1)
    inbox.close()
    assert inbox.get_nowait() == 1
    with pytest.raises(anyio.EndOfStream):
        inbox.get_nowait()
    with pytest.raises(InboxClosed):
        inbox.put_nowait(2)


async def test_once_the_reader_has_left_a_put_fails_even_a_waiting_one():
    inbox = Inbox[int](1)
    inbox.put_nowait(1)
    failed: list[BaseException] = []

    async def blocked_put() -> None:
        try:
            await inbox.put(2)
        except InboxClosed as exc:
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked_put)
        await anyio.lowlevel.checkpoint()
        async with inbox:  # the reader takes nothing and leaves
            pass
    assert len(failed) == 1


async def test_a_quiet_item_waits_for_the_next_one_that_wakes_the_reader():
    inbox = Inbox[int](4)
    got: list[int] = []

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_into, inbox, got)
        await anyio.lowlevel.checkpoint()  # the reader is waiting now
        inbox.put_nowait(1, wake=False)
        inbox.put_nowait(2, wake=False)
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert got == []  # not woken for them
        inbox.put_nowait(3)
        await anyio.lowlevel.checkpoint()
        assert got == [1, 2, 3]  # all of them, in order, on the next wake
        inbox.put_nowait(4, wake=False)
        inbox.close()  # closing wakes the reader: it takes what is in, then ends
    assert got == [1, 2, 3, 4]


async def test_quiet_items_that_fill_the_inbox_wake_the_reader():
    inbox = Inbox[int](3)
    got: list[int] = []

    with anyio.fail_after(10):  # before the rule, the publisher waited forever
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_into, inbox, got)
            await anyio.lowlevel.checkpoint()
            for i in range(5):  # a publisher of quiet items only never waits forever
                await inbox.put(i, wake=False)
            await anyio.lowlevel.checkpoint()
            inbox.close()
    assert got == [0, 1, 2, 3, 4]
