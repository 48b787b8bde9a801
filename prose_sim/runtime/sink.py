"""The run's sink: every episode's bus puts its events in, the run's single writer takes
them all out at once.

An anyio memory stream did this job, one ``send_nowait`` and one ``receive_nowait`` an event,
each with its bookkeeping of waiting tasks; here a bus appends to one shared queue, and the
writer takes everything in it with one call (``take``), so the cost per event is an append
and a place in a list.

Many senders, one reader, as the stream had: each episode holds a ``SinkSender`` of its own
(``clone``) and closes it when it ends; ``take`` says the sink has ended once every sender is
closed and nothing is left. Bounded: ``send_nowait`` refuses an event when ``size`` are in
(``anyio.WouldBlock``), and ``send`` waits until ``take`` makes room: a slow writer slows the
episodes down instead of letting memory grow. Once the reader has left (``close``), senders
get ``anyio.BrokenResourceError``; a closed sender, ``anyio.ClosedResourceError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

import anyio

from prose_sim.events import Event


class EventSender(Protocol):
    """What an episode's bus sends its events through (a ``SinkSender``, or an anyio memory
    stream's send side in tests)."""

    def send_nowait(self, item: Event) -> None: ...

    async def send(self, item: Event) -> None: ...

    async def aclose(self) -> None: ...


class EventSink:
    """Bounded, many senders, one reader that takes everything at once."""

    __slots__ = ("_events", "_reader_left", "_room", "_senders", "size")

    def __init__(self, size: int):
        self.size = size
        self._events: deque[Event] = deque()
        self._senders = 0
        self._reader_left = False
        self._room: asyncio.Event | None = None  # senders wait on it while the sink is full

    def sender(self) -> SinkSender:
        """A new open sender (the sink ends when every sender is closed)."""
        self._senders += 1
        return SinkSender(self)

    def put_nowait(self, item: Event) -> None:
        """Put ``item`` in (``anyio.WouldBlock`` when the sink is full)."""
        if self._reader_left:
            raise anyio.BrokenResourceError
        if len(self._events) >= self.size:
            raise anyio.WouldBlock
        self._events.append(item)

    async def put(self, item: Event) -> None:
        """Put ``item`` in, waiting while the sink is full."""
        while True:
            try:
                self.put_nowait(item)
                return
            except anyio.WouldBlock:
                if self._room is None:
                    self._room = asyncio.Event()
                await self._room.wait()

    def take(self) -> tuple[list[Event], bool]:
        """(every event in, in order; whether more can come)."""
        events = list(self._events)
        self._events.clear()
        self._wake_senders()
        return events, bool(self._senders)

    def close(self) -> None:
        """The reader leaves: later sends raise ``anyio.BrokenResourceError``."""
        self._reader_left = True
        self._events.clear()
        self._wake_senders()

    def _sender_closed(self) -> None:
        self._senders -= 1

    def _wake_senders(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    def __len__(self) -> int:
        return len(self._events)


class SinkSender:
    """One sender's handle on the sink: an episode's, or the run's own."""

    __slots__ = ("_closed", "_sink")

    def __init__(self, sink: EventSink):
        self._sink = sink
        self._closed = False

    def send_nowait(self, item: Event) -> None:
        """Put ``item`` in (``anyio.WouldBlock`` when the sink is full)."""
        if self._closed:
            raise anyio.ClosedResourceError
        self._sink.put_nowait(item)

    async def send(self, item: Event) -> None:
        """Put ``item`` in, waiting while the sink is full."""
        if self._closed:
            raise anyio.ClosedResourceError
        await self._sink.put(item)

    def clone(self) -> SinkSender:
        """Another open sender on the same sink."""
        if self._closed:
            raise anyio.ClosedResourceError
        return self._sink.sender()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sink._sender_closed()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> SinkSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
