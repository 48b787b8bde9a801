"""The run folder: the one reader and writer of its files.

A run folder holds ``scenario.toml`` (the resolved scenario), ``events.jsonl`` (the
log, the source of truth), ``results.csv`` and ``summary.json`` (written at the
run's end) and ``run.lock`` (``lock``). The runner, resume, replay, merge, report,
view and export reach those files only through ``RunFolder``, so what a file is
called, how it is read and what a missing or foreign one says is decided here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from prose_sim.config import Scenario
from prose_sim.errors import UsageError
from prose_sim.eventlog import EventLogWriter, TornTail, decode_event, read_events, read_log
from prose_sim.events import Event, RunStarted
from prose_sim.runfolder.lock import LOCK_NAME, RunLock
from prose_sim.scenario.loading import dump_scenario, load_run
from prose_sim.world.assembly import ResolvedRun

SCENARIO = "scenario.toml"
LOG = "events.jsonl"
RESULTS = "results.csv"
SUMMARY = "summary.json"

__all__ = ["LOCK_NAME", "LOG", "RESULTS", "SCENARIO", "SUMMARY", "RunFolder", "default_run_dir"]


def default_run_dir(scenario: Scenario, root: Path = Path("runs")) -> Path:
    """``runs/NAME-YYYYmmdd-HHMMSS`` (``-2``, ``-3``, ... when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{scenario.name}-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{scenario.name}-{stamp}-{n}"
    return candidate


class RunFolder:
    """One run folder's files."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def scenario_path(self) -> Path:
        return self.path / SCENARIO

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    # --- a new run's folder --------------------------------------------------------

    def check_new(self) -> None:
        """Refuse (exit 2, naming what is there) a new run's folder unless it is new or empty."""
        path = self.path
        if not path.exists():
            return
        if not path.is_dir():
            raise UsageError(f"{path}: is a file, not a folder; choose another --out")
        present = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
        if not present:
            return
        if self.log_path.exists():
            what = (
                "a finished run"
                if self.finished()
                else "a run (unfinished: continue it with run --resume)"
            )
            raise UsageError(f"{path}: already holds {what}; choose a new or empty --out")
        shown = ", ".join(present[:5]) + (
            f" and {len(present) - 5} more" if len(present) > 5 else ""
        )
        raise UsageError(
            f"{path}: is not empty and not a prose_sim run (holds {shown}); "
            f"a new run goes only into a new or empty folder: choose another --out"
        )

    def claim(self, new: bool) -> RunLock:
        """Lock the folder (creating a new run's); a new run's folder is checked again under
        the lock (another process may have written there before we locked)."""
        if new:
            self.check_new()
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{self.path}: cannot create the run folder: {exc}") from None
        lock = RunLock(self.path).acquire()
        if new:
            try:
                self.check_new()
            except UsageError:
                lock.release()
                raise
        return lock

    # --- the scenario --------------------------------------------------------------

    def write_scenario(self, scenario: Scenario) -> None:
        """Write ``scenario.toml`` atomically (an extension replaces it: a crash leaves the
        old file or the new one, whole)."""
        _replace_whole(self.scenario_path, dump_scenario(scenario).encode("utf-8"))

    def copy_scenario_from(self, other: RunFolder) -> None:
        """Take another run's ``scenario.toml`` as it is (a merge of its shards)."""
        shutil.copyfile(other.scenario_path, self.scenario_path)

    def require_run(self) -> None:
        """A UsageError unless this is a prose_sim run folder."""
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: no such run folder")
        if not self.scenario_path.exists():
            raise UsageError(f"{self.path}: not a prose_sim run folder (no {SCENARIO})")

    def scenario_tables(self) -> dict[str, Any]:
        """The resolved scenario's tables as written (TOML), or a one-line UsageError."""
        try:
            return tomllib.loads(self.scenario_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{self.scenario_path}: missing (the resolved scenario)") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{self.scenario_path}: cannot be read: {exc}") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise UsageError(f"{self.scenario_path}: cannot be read: nested too deeply") from None

    def resolved_scenario(self) -> dict[str, Any]:
        """The run's resolved scenario tables: from its log's ``RunStarted`` (which holds them
        since the three-phase runner), else from ``scenario.toml`` (a UsageError when neither
        can be read)."""
        started = self.started()
        if started is not None and started.scenario:
            return started.scenario
        return self.scenario_tables()

    def load_run(self, overrides: Sequence[str] = ()) -> ResolvedRun:
        """The run's scenario, checked and assembled into its world (as recorded)."""
        self.require_run()
        return load_run(self.scenario_path, overrides, recorded=True)

    # --- the log -------------------------------------------------------------------

    def read_log(self) -> tuple[list[Event], TornTail | None]:
        """Every whole event, and the torn last line an interruption left (if any)."""
        return read_log(self.log_path)

    def events(self) -> Iterator[Event]:
        return read_events(self.log_path)

    def started(self) -> RunStarted | None:
        """The log's first event, the run's ``RunStarted`` (None without a readable one)."""
        try:
            first = next(self.events(), None)
        except (OSError, UsageError):
            return None
        return first if isinstance(first, RunStarted) else None

    def last_event(self) -> Event | None:
        """The log's last whole event, read from its end (None when the log is empty, or its
        last line is torn or not an event): whether a run ended, without reading it all."""
        try:
            with open(self.log_path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                chunk = b""
                step = 1 << 16
                while True:  # back until the chunk holds a whole last line
                    start = max(0, size - len(chunk) - step)
                    handle.seek(start)
                    chunk = handle.read(size - start)
                    body = chunk.rstrip(b"\n")
                    if b"\n" in body or start == 0 or not body:
                        break
        except FileNotFoundError:
            raise UsageError(f"{self.log_path}: no event log here") from None
        except OSError as exc:
            raise UsageError(f"{self.log_path}: cannot read the event log: {exc}") from None
        if not chunk.endswith(b"\n"):
            return None  # torn: the writer stopped mid-line
        line = chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            return decode_event(line) if line.strip() else None
        except msgspec.DecodeError:
            return None

    def log_writer(self) -> EventLogWriter:
        return EventLogWriter(self.log_path)

    def rewrite_log(self, events: list[Event]) -> None:
        """Replace the log with ``events``, atomically (a crash leaves the old log whole)."""
        encoder = msgspec.json.Encoder()
        buffer = bytearray()
        for event in events:
            encoder.encode_into(event, buffer, -1)
            buffer.extend(b"\n")
        _replace_whole(self.log_path, buffer)

    # --- results and summary -------------------------------------------------------

    def results(self) -> bytes:
        """``results.csv`` as written, or a UsageError saying how to rebuild it."""
        try:
            return self.results_path.read_bytes()
        except FileNotFoundError:
            raise UsageError(
                f"{self.results_path}: missing; rebuild it with `replay --report-only`"
            ) from None

    def write_results(self, data: bytes) -> None:
        """Write ``results.csv`` whole; on an OSError a partial file is removed and it is raised."""
        _write_whole(self.results_path, data)

    def summary(self) -> dict[str, Any] | None:
        """``summary.json``, or None when it is missing or not a JSON object."""
        try:
            value = msgspec.json.decode(self.summary_path.read_bytes())
        except (OSError, msgspec.DecodeError):
            return None
        return value if isinstance(value, dict) else None

    def write_summary(self, data: bytes) -> None:
        _write_whole(self.summary_path, data)

    def finished(self) -> bool:
        """Whether the run's summary says it ran to its end (an interrupted or stopped one did not)."""
        summary = self.summary()
        return summary is not None and summary.get("status") in ("completed", "failed")


def _replace_whole(path: Path, data: bytes | bytearray) -> None:
    """Replace ``path`` with ``data`` atomically: written beside it, synced, then renamed over
    it, so a crash leaves the old file or the new one whole; on an OSError (a full disk) the
    old file stays, the partial copy goes, and it is raised."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _write_whole(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
