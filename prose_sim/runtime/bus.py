"""The event bus of one episode.

Actors subscribe to event kinds and receive them in their own bounded inbox
(``prose_sim.inbox``). A publisher builds the event with its own fields;
publishing stamps it with the run id, episode id, a per-episode sequence
number and the time, forwards it to the run's sink (the single writer of the
event log) and then to every subscriber.
Bounded buffers give back-pressure: a slow log writer slows the episodes down
instead of letting memory grow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio
import msgspec

from prose_sim.events import Event
from prose_sim.inbox import Inbox
from prose_sim.runtime.sink import EventSender

INBOX_SIZE = 16

E = TypeVar("E", bound=Event)


async def _deliver(stream: EventSender, event: Event) -> None:
    """Deliver without yielding while there is room; only a full buffer makes the sender wait."""
    try:
        stream.send_nowait(event)
    except anyio.WouldBlock:
        await stream.send(event)


class EpisodeBus:
    def __init__(
        self,
        run_id: str,
        episode_id: str,
        sink: EventSender,
        checkpoint: Callable[[], None] = lambda: None,
        sink_full: Callable[[], object] = lambda: None,
    ):
        """``checkpoint`` runs before each publish (the run's stop after a signal acts there);
        ``sink_full`` when the sink has no room, before waiting for it (the run's log writer
        drains the sink there, so a publisher rarely waits)."""
        self._checkpoint = checkpoint
        self._sink_full = sink_full
        self.run_id = run_id
        self.episode_id = episode_id
        self._sink = sink
        self._seq = 0
        # kind -> (inbox, whether a delivery wakes its reader)
        self._subscribers: dict[type[Event], list[tuple[Inbox[Event], bool]]] = {}
        self._inboxes: list[Inbox[Event]] = []
        self.closed = False

    def subscribe(
        self, kinds: Iterable[type[Event]], quiet: Iterable[type[Event]] = ()
    ) -> Inbox[Event]:
        """A new inbox receiving every later event of the given kinds; those of ``quiet``
        are put in without waking its reader (``Inbox.put_nowait``)."""
        # not Inbox[Event](...): a generic alias's call costs 9x the inbox itself (5 an episode)
        inbox: Inbox[Event] = Inbox(INBOX_SIZE)
        self._inboxes.append(inbox)
        quiet = frozenset(quiet)
        for kind in kinds:
            self._subscribers.setdefault(kind, []).append((inbox, kind not in quiet))
        return inbox

    def _stamped(self, event: E) -> E:
        """``event`` with this bus's envelope: run, episode, the next sequence number, time."""
        return msgspec.structs.replace(
            event,
            run_id=self.run_id,
            episode_id=self.episode_id,
            seq=self._seq,
            ts=time.time(),
        )

    async def publish(self, event: E) -> E:
        """Stamp ``event`` with this bus's envelope and deliver it; returns the stamped event.

        Delivered without yielding while there is room, so an event reaches all its
        subscribers before any of them can react to it, and causes precede their effects in
        every inbox. Only a full buffer makes the publisher wait."""
        self._checkpoint()
        stamped = self._stamped(event)
        self._seq += 1
        try:
            self._sink.send_nowait(stamped)
        except anyio.WouldBlock:
            self._sink_full()
            await _deliver(self._sink, stamped)
        for inbox, wake in self._subscribers.get(type(stamped), ()):
            if not inbox.put_nowait(stamped, wake):  # only a full inbox makes the publisher wait
                await inbox.put(stamped, wake)
        return stamped

    def publish_nowait(self, event: E) -> E:
        """``publish`` from outside a task, for a bus without subscribers whose sink has room
        (``anyio.WouldBlock`` when it has none)."""
        stamped = self._stamped(event)
        self._sink.send_nowait(stamped)
        self._seq += 1
        return stamped

    async def aclose(self) -> None:
        """End every inbox (their actors finish) and release the sink."""
        if self.closed:
            return
        self.closed = True
        for inbox in self._inboxes:
            inbox.close()
        await self._sink.aclose()
