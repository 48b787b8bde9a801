"""Stopping a run early: why it stopped, and the scope that stopping cancels.

Five things stop a run before its episodes are done: a signal (SIGINT,
SIGTERM, SIGHUP), a fatal model error (a wrong key, an unknown model, an
endpoint that cannot be reached), the circuit breaker (a role whose calls keep
failing), an I/O error (a full disk) and the ``[budget]`` reached (no call in
flight is cut off then: see ``models.budget``). Each calls ``stop`` once; the first
reason wins. Stopping cancels the episodes only: the event log's writer drains
what was published, the run's last event says why it stopped, and the summary
of what is done is written, so the run resumes from where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

# kind -> RunFinished status and the CLI's exit code
STATUS = {
    "signal": "interrupted",
    "fatal": "stopped",
    "breaker": "stopped",
    "io_error": "stopped",
    "budget": "stopped",
}


class RunControl:
    def __init__(self) -> None:
        self.kind = ""  # "" (not stopped) | signal | fatal | breaker | io_error | budget
        self.message = ""
        self.signal = 0  # the signal number, for kind "signal"
        self._scope: anyio.CancelScope | None = None
        self._exit: Callable[[], None] | None = None
        self._exit_pending = False

    def exit_on_signal(self, act: Callable[[], None]) -> None:
        """A signal then ends the process through ``act``, run at the next ``checkpoint``,
        instead of cancelling the episodes (with thousands in flight they take seconds to
        unwind). ``act`` writes what a stopped run writes, then ends the process."""
        self._exit = act

    def checkpoint(self) -> None:
        """Where a task of the loop runs (never in a signal handler, which may have cut into
        the log's writer): a pending exit after a signal is taken here."""
        if self._exit_pending and self._exit is not None:
            self._exit_pending = False
            self._exit()

    def attach(self, scope: anyio.CancelScope) -> None:
        self._scope = scope
        if self.kind:
            scope.cancel()

    def stop(self, kind: str, message: str, signum: int = 0) -> None:
        if self.kind:
            return
        self.kind, self.message, self.signal = kind, message, signum
        if kind == "signal" and self._exit is not None:
            self._exit_pending = True  # the next checkpoint exits
            return
        if self._scope is not None:
            self._scope.cancel()

    @property
    def status(self) -> str:
        return STATUS.get(self.kind, "")
