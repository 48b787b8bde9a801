"""The event log: ``RUN_DIR/events.jsonl``, one msgspec JSON object a line.

One writer per run appends events in batches (flushed whenever the queue of
events runs dry, or a batch grows large), so the log on disk trails the
simulation by at most one batch. The reader decodes lines back into the same
event Structs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from prose_sim.errors import UsageError
from prose_sim.events import AnyEvent, Event

FLUSH_BYTES = 1 << 20


class EventLogWriter:
    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "ab")
        self._encoder = msgspec.json.Encoder()
        self._buffer = bytearray()
        self.events_written = 0

    def write(self, event: Event) -> None:
        self._encoder.encode_into(event, self._buffer, -1)
        self._buffer.extend(b"\n")
        self.events_written += 1
        if len(self._buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write(self._buffer)
            self._buffer.clear()
        self._file.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


_decoder = msgspec.json.Decoder(AnyEvent)


class TornTail(msgspec.Struct, frozen=True):
    """A last line cut short (the writer was killed mid-write): dropped on resume."""

    lineno: int
    offset: int  # where the torn line starts: the log is cut back to here
    length: int


def read_events(path: Path) -> Iterator[Event]:
    """Every event of a log, in file order. A malformed line is a clear error."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no event log here") from None
    with handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
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
                events.append(_decoder.decode(line))
            except msgspec.DecodeError as exc:
                if last:  # no newline after it: the writer stopped mid-line
                    return events, TornTail(lineno=lineno, offset=offset, length=len(line))
                raise UsageError(f"{path}:{lineno}: not a prose_sim event: {exc}") from None
        offset += len(line) + 1
    return events, None
