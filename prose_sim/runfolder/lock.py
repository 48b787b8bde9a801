"""One process per run folder: an exclusive OS lock on ``RUN_DIR/run.lock``.

The lock file holds the pid of the process that owns the run. The lock itself
is ``flock`` (``fcntl``), which the kernel drops when the process dies however
it dies (kill -9 included), so a lock file left by a dead process is simply
taken over; a live owner makes a second ``run`` or ``run --resume`` a clear
refusal naming its pid. The file stays in the folder after the run (removing
it would race with a process that just opened it); it is never part of the
results.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from prose_sim.errors import UsageError

LOCK_NAME = "run.lock"


class RunLock:
    """Held from ``acquire`` until ``release`` (or the process's end)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(
                f"{self.path}: cannot create the run's lock file: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise UsageError(
                f"{self.path.parent}: in use by a running prose_sim ({who}); wait for it to end "
                f"or stop it, then resume with: python -m prose_sim run --resume {self.path.parent}"
            ) from None
        os.ftruncate(
            fd, 0
        )  # a stale pid (its process is gone: the OS dropped its lock) is replaced
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0
