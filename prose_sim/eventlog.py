"""The event log: ``RUN_DIR/events.jsonl``, one msgspec JSON object a line.

One writer per run appends events in batches (flushed whenever the queue of
events runs dry, or a batch grows large), so the log on disk trails the
simulation by at most one batch. The reader decodes lines back into the same
event Structs.

A batch that cannot be written (a full disk: ENOSPC, or any other I/O error)
is cut back off the file, so the log stays whole up to its last line, and the
writer raises ``RunIOError`` naming the path and the error; it writes nothing
after that. Every batch is scrubbed of the secrets the run read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec

from prose_sim import scrub
from prose_sim.errors import RunIOError, UsageError
from prose_sim.events import AnyEvent, BatchStats, Event

FLUSH_BYTES = 1 << 20
WRITE_CHUNK = 256  # events encoded in one call by write_all


class EventLogWriter:
    def __init__(self, path: Path):
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunIOError(path, exc) from None
        self._size = os.fstat(self._fd).st_size  # the log ends with a whole line here
        self._encoder = msgspec.json.Encoder()
        self._buffer = bytearray()
        self.events_written = 0
        self.broken: RunIOError | None = None  # set by the first failed write

    def write(self, event: Event) -> None:
        if self.broken is not None:
            return
        self._encoder.encode_into(event, self._buffer, -1)
        self._buffer.extend(b"\n")
        self.events_written += 1
        if len(self._buffer) >= FLUSH_BYTES:
            self.flush()

    def write_all(self, events: list[Event]) -> None:
        """``write`` each of ``events``, in order, encoded in one call (the run's writer
        takes every event published since it last looked at once)."""
        encode_lines = self._encoder.encode_lines  # each a line, as ``write``'s
        # a few hundred at a time: a drain at 10,000 episodes can take tens of MB of events,
        # which would otherwise be encoded whole before a flush
        for start in range(0, len(events), WRITE_CHUNK):
            if self.broken is not None:
                return
            chunk = events[start : start + WRITE_CHUNK]
            self._buffer += encode_lines(chunk)
            self.events_written += len(chunk)
            if len(self._buffer) >= FLUSH_BYTES:
                self.flush()

    def flush(self) -> None:
        if not self._buffer or self.broken is not None:
            return
        batch, self._buffer = self._buffer, bytearray()
        data = memoryview(scrub.scrub_bytes(batch))
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            self.broken = RunIOError(self.path, exc)
            # drop the part of the batch that got through: the log ends on a whole line
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise self.broken from None
        self._size = os.fstat(self._fd).st_size

    def close(self) -> None:
        """Flush what is left and close; never raises (a failed flush is in ``broken``)."""
        try:
            self.flush()
        except RunIOError:
            pass
        finally:
            os.close(self._fd)


_decoder = msgspec.json.Decoder(AnyEvent)
_STATS_FIELDS = frozenset(BatchStats.__struct_fields__)


def decode_event(line: bytes) -> Event:
    """One log line as its event; lines written by earlier versions are read too.

    Before the servers' statistics became one record, a ``batch_served`` line held them
    flat, with the mean queue wait; such a line is nested on reading, so that old logs
    still replay, resume and render.
    """
    try:
        return _decoder.decode(line)
    except msgspec.ValidationError:
        upgraded = _upgrade_flat_batch(line)
        if upgraded is None:
            raise
        return _decoder.decode(upgraded)


def _upgrade_flat_batch(line: bytes) -> bytes | None:
    raw = msgspec.json.decode(line)
    if not isinstance(raw, dict) or raw.get("kind") != "batch_served" or "batch" in raw:
        return None
    batch = {key: raw.pop(key) for key in list(raw) if key in _STATS_FIELDS}
    mean_wait = raw.pop("mean_queue_wait_s", 0.0)
    batch["queue_wait_s"] = mean_wait * batch.get("size", 0)
    raw["batch"] = batch
    return msgspec.json.encode(raw)


class TornTail(msgspec.Struct, frozen=True):
    """A last line cut short (the writer was killed mid-write): dropped on resume."""

    lineno: int
    offset: int  # where the torn line starts: the log is cut back to here
    length: int


def read_events(path: Path) -> Iterator[Event]:
    """Every event of a log, in file order. A malformed line is a clear error."""
    try:  # opened apart from the with below, so that only a missing file is a UsageError
        handle = open(path, "rb")  # noqa: SIM115 -- closed by the with block below
    except FileNotFoundError:
        raise UsageError(f"{path}: no event log here") from None
    with handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield decode_event(line)
            except msgspec.DecodeError as exc:
                raise UsageError(f"{path}:{lineno}: not a prose_sim event: {exc}") from None


def read_log(path: Path) -> tuple[list[Event], TornTail | None]:
    """Every event of a possibly interrupted log, and its torn last line if it has one.

    Only the last line may be torn (no newline and not decodable); a bad line
    anywhere else means the log is corrupt or not a prose_sim log: a clear error.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no event log here") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the event log: {exc}") from None
    events: list[Event] = []
    offset = 0
    lines = data.split(b"\n")
    for lineno, line in enumerate(lines, 1):
        last = lineno == len(lines)
        if line.strip():
            try:
                events.append(decode_event(line))
            except msgspec.DecodeError as exc:
                if last:  # no newline after it: the writer stopped mid-line
                    return events, TornTail(lineno=lineno, offset=offset, length=len(line))
                raise UsageError(f"{path}:{lineno}: not a prose_sim event: {exc}") from None
        offset += len(line) + 1
    return events, None
