"""An actor's inbox: a bounded first-in, first-out queue of events with one reader.

The episode bus puts each event in its subscribers' inboxes; each actor reads its own. An
anyio memory stream did this job, but its ``receive`` passes through the event loop before
every item, buffered or not (a checkpoint), and builds a waiter on each wait: with several
deliveries per model call that was one of the largest costs of a run on the scripted backend
(``bench overhead``). Here a buffered event is taken at once, and only an empty inbox makes
its reader wait, on one future that the next delivery resolves. The futures are asyncio's: a
run is on anyio's asyncio backend (as ``runtime.signals`` assumes); an ``anyio.Event`` looks
the backend up each time one is made (bench overhead: 254-262 against 239-241 µs a call), and
an ``asyncio.Event`` makes a future and a coroutine for each wait besides itself.

An item may be put in without waking the reader (``wake=False``): the actors' events they only
record (``Actor.quiet``) wait for the next one they act on, which saves a pass of the loop each.

Bounded, as the streams were: a full inbox makes the publisher wait (back-pressure), so a
slow actor slows its episode down instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class InboxClosed(Exception):
    """Put into an inbox that was closed, or whose reader has left."""


class Inbox(Generic[T]):
    """Bounded FIFO, one reader; ``close`` ends the reader's iteration once it is empty."""

    __slots__ = ("_closed", "_items", "_readable", "_size", "_writable")

    def __init__(self, size: int):
        self._items: deque[T] = deque()
        self._size = size
        self._closed = False
        self._readable: asyncio.Future[None] | None = None  # the reader waits on it while empty
        self._writable: asyncio.Event | None = None  # publishers wait on it while full

    def put_nowait(self, item: T, wake: bool = True) -> bool:
        """Put ``item`` in when there is room; False when the inbox is full.

        ``wake=False``: a waiting reader is not woken for it (an item it only records): it
        takes it, in order, when the next item that wakes it comes, or once the inbox is full
        (so a publisher never waits on a reader that sleeps) or closed."""
        if self._closed:
            raise InboxClosed
        items = self._items
        if len(items) >= self._size:
            return False
        items.append(item)
        if self._readable is not None and (wake or len(items) >= self._size):
            self._wake_reader()
        return True

    def _wake_reader(self) -> None:
        readable = self._readable
        self._readable = None
        if readable is not None and not readable.done():  # done: its waiter was cancelled
            readable.set_result(None)

    async def put(self, item: T, wake: bool = True) -> None:
        """Put ``item`` in, waiting while the inbox is full."""
        while not self.put_nowait(item, wake):
            if self._writable is None:
                self._writable = asyncio.Event()
            await self._writable.wait()

    def close(self) -> None:
        """No more items: the reader ends after those already in (a waiting reader wakes)."""
        self._closed = True
        self._wake_reader()

    async def __aenter__(self) -> Inbox[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """The reader is done: later puts raise ``InboxClosed`` (a waiting one wakes to it)."""
        self._closed = True
        self._items.clear()
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def get_nowait(self) -> T:
        """The next item if one is in (``anyio.WouldBlock`` if none; ``anyio.EndOfStream``
        once closed and empty)."""
        if not self._items:
            raise anyio.EndOfStream if self._closed else anyio.WouldBlock
        item = self._items.popleft()
        if self._writable is not None:
            self._writable.set()
            self._writable = None
        return item

    def __aiter__(self) -> Inbox[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            if self._readable is None or self._readable.done():
                self._readable = asyncio.get_running_loop().create_future()
            await self._readable
        return self.get_nowait()
