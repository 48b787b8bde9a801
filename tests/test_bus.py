"""The episode bus: subscriptions, stamping, causal order, closing."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import msgspec
import pytest

from prose_sim.events import DraftProduced, InstanceStarted, MetricsComputed
from prose_sim.runtime.bus import EpisodeBus

pytestmark = pytest.mark.anyio


def make_bus(buffer=100):
    send, receive = anyio.create_memory_object_stream(buffer)
    return EpisodeBus("run", "ep", send), receive


async def test_subscribers_get_only_their_kinds_and_the_sink_gets_all():
    bus, sink = make_bus()
    drafts = bus.subscribe([DraftProduced])
    both = bus.subscribe([DraftProduced, MetricsComputed])
    await bus.publish(DraftProduced(instance=0, text="d", preferences=""))
    await bus.publish(MetricsComputed(instance=0, metrics={"x": 1.0}))
    assert [type(e) for e in (drafts.get_nowait(),)] == [DraftProduced]
    with pytest.raises(anyio.WouldBlock):
        drafts.get_nowait()
    assert [type(both.get_nowait()), type(both.get_nowait())] == [
        DraftProduced,
        MetricsComputed,
    ]
    assert [type(sink.receive_nowait()) for _ in range(2)] == [DraftProduced, MetricsComputed]


async def test_events_are_stamped_with_run_episode_and_sequence():
    bus, _sink = make_bus()
    first = await bus.publish(DraftProduced(instance=0, text="a", preferences=""))
    second = await bus.publish(DraftProduced(instance=1, text="b", preferences=""))
    assert (first.run_id, first.episode_id, first.seq) == ("run", "ep", 0)
    assert second.seq == 1 and second.ts >= first.ts


async def test_publishing_stamps_a_copy_and_keeps_the_publishers_fields():
    bus, sink = make_bus()
    built = DraftProduced(instance=3, text="t", preferences="p")
    stamped = await bus.publish(built)
    assert (built.run_id, built.episode_id, built.seq) == ("", "", -1)  # the built one is untouched
    assert (stamped.instance, stamped.text, stamped.preferences) == (3, "t", "p")
    assert sink.receive_nowait() is stamped


async def test_an_events_log_line_has_its_own_fields_first_then_the_envelope():
    """The log format a published event is written in (older logs read the same)."""
    bus, _ = make_bus()
    stamped = await bus.publish(MetricsComputed(instance=0, metrics={"x": 1.0}))
    line = msgspec.json.encode(msgspec.structs.replace(stamped, ts=1.5))
    assert line == (
        b'{"kind":"metrics_computed","instance":0,"metrics":{"x":1.0},'
        b'"run_id":"run","episode_id":"ep","seq":0,"ts":1.5}'
    )


async def test_an_event_reaches_every_subscriber_before_anyone_reacts():
    """Causes precede effects in every inbox: a reaction published by the first
    subscriber lands after the cause in the second subscriber's inbox."""
    bus, _ = make_bus()
    reactor_inbox = bus.subscribe([InstanceStarted])
    observer_inbox = bus.subscribe([InstanceStarted, DraftProduced])

    async def reactor():
        event = await anext(reactor_inbox)
        await bus.publish(DraftProduced(instance=event.instance, text="x", preferences=""))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reactor)
        await anyio.lowlevel.checkpoint()
        await bus.publish(InstanceStarted(instance=0, persona="p", document_id="d", document="t"))
    seen = [type(observer_inbox.get_nowait()), type(observer_inbox.get_nowait())]
    assert seen == [InstanceStarted, DraftProduced]


async def test_closing_ends_every_inbox():
    bus, sink = make_bus()
    inbox = bus.subscribe([DraftProduced])
    await bus.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(inbox)
    with pytest.raises(anyio.EndOfStream):
        await sink.receive()
    await bus.aclose()  # idempotent


async def test_bounded_inbox_applies_back_pressure():
    bus, _ = make_bus()
    bus.subscribe([DraftProduced])  # nobody reads it
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            for i in range(1000):
                await bus.publish(DraftProduced(instance=i, text="", preferences=""))


async def test_the_checkpoint_runs_before_an_event_is_stamped_or_delivered():
    send, sink = anyio.create_memory_object_stream(10)
    seen = []
    bus = EpisodeBus("run", "ep", send, checkpoint=lambda: seen.append(sink.statistics()))
    await bus.publish(DraftProduced(instance=0, text="a", preferences=""))
    assert [s.current_buffer_used for s in seen] == [0]
    assert sink.receive_nowait().seq == 0


async def test_publish_nowait_stamps_and_delivers_at_once():
    bus, sink = make_bus()
    await bus.publish(DraftProduced(instance=0, text="a", preferences=""))
    stamped = bus.publish_nowait(MetricsComputed(instance=0, metrics={}))
    assert (stamped.seq, stamped.episode_id) == (1, "ep")
    assert [e.seq for e in (sink.receive_nowait(), sink.receive_nowait())] == [0, 1]


async def test_a_full_sink_is_handed_to_sink_full_before_the_publisher_waits():
    send, sink = anyio.create_memory_object_stream(1)
    drained = []

    def drain():  # as the run's log writer does: take what is waiting
        drained.append(sink.receive_nowait().seq)

    bus = EpisodeBus("run", "ep", send, sink_full=drain)
    await bus.publish(DraftProduced(instance=0, text="a", preferences=""))
    with anyio.fail_after(5):  # never waits: the drain made room
        await bus.publish(DraftProduced(instance=1, text="b", preferences=""))
    assert drained == [0]
    assert sink.receive_nowait().seq == 1
