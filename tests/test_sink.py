"""The run's sink: many episodes put their events in, the run's writer takes them all at once."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from prose_sim.events import DraftProduced
from prose_sim.runtime.sink import EventSink

pytestmark = pytest.mark.anyio


def event(n: int) -> DraftProduced:
    return DraftProduced(instance=n, text="", preferences="")


async def test_take_gives_every_event_in_order_and_ends_when_every_sender_is_closed():
    sink = EventSink(8)
    first = sink.sender()
    second = first.clone()
    first.send_nowait(event(0))
    second.send_nowait(event(1))
    first.send_nowait(event(2))
    events, more = sink.take()
    assert [e.instance for e in events] == [0, 1, 2] and more
    assert sink.take() == ([], True)
    first.close()
    second.send_nowait(event(3))
    await second.aclose()
    events, more = sink.take()  # what is left comes with the end
    assert [e.instance for e in events] == [3] and not more


async def test_a_full_sink_refuses_send_nowait_and_send_waits_until_take_makes_room():
    sink = EventSink(2)
    sender = sink.sender()
    sender.send_nowait(event(0))
    sender.send_nowait(event(1))
    with pytest.raises(anyio.WouldBlock):
        sender.send_nowait(event(2))
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender.send, event(2))
        await anyio.lowlevel.checkpoint()
        assert len(sink) == 2  # still waiting
        assert [e.instance for e in sink.take()[0]] == [0, 1]
    assert [e.instance for e in sink.take()[0]] == [2]


async def test_sending_after_the_reader_left_or_on_a_closed_sender_is_an_error():
    sink = EventSink(2)
    sender = sink.sender()
    closed = sender.clone()
    closed.close()
    with pytest.raises(anyio.ClosedResourceError):
        closed.send_nowait(event(0))
    with pytest.raises(anyio.ClosedResourceError):
        closed.clone()
    sender.send_nowait(event(0))
    sender.send_nowait(event(1))
    errors: list[BaseException] = []

    async def waits() -> None:
        try:
            await sender.send(event(2))
        except anyio.BrokenResourceError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waits)  # waiting for room when the reader leaves
        await anyio.lowlevel.checkpoint()
        sink.close()
    assert len(errors) == 1  # woken, and told
    with pytest.raises(anyio.BrokenResourceError):
        sender.send_nowait(event(3))
