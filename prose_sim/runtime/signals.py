"""SIGINT, SIGTERM and SIGHUP during a run: stop cleanly on the first, exit at once on the next.

SLURM, Kubernetes and ``docker stop`` send SIGTERM before they kill; a closed
terminal sends SIGHUP. The first of these stops the run like Ctrl-C does (the
log is flushed, the summary of what is done is written, the resume command is
printed, exit 128 + the signal's number); from then on any of them exits the
process at once.

The first signal is acted on in the signal handler itself, not in a task of the event loop:
with 10,000 episodes in flight one pass of the loop runs every episode that is ready, which
takes seconds, and a task watching for signals would wait for the pass to end. Python runs a
handler between two bytecodes of the main thread, so the run's episodes are cancelled (and the
loop woken) within milliseconds, whatever the loop is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

from prose_sim.runtime.control import RunControl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_on_signals(control: RunControl, then: Callable[[], None] = lambda: None) -> Iterator[None]:
    """While the block runs (in the event loop's thread): the first stop signal calls
    ``control.stop``, and ``then`` runs in the event loop (a signal handler must not touch the
    loop's objects itself); the handlers before it come back after the block unless a signal
    came (then any later one exits at once, as before)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    loop = asyncio.get_running_loop()
    signalled = False

    def first(signum: int, frame: object) -> None:
        nonlocal signalled
        signalled = True
        exit_on_next_signal()
        control.stop("signal", signal.Signals(signum).name, signum=signum)
        loop.call_soon_threadsafe(then)  # and an idle loop, blocked in select(), wakes

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, first)
    try:
        yield
    finally:
        if not signalled:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def exit_on_next_signal() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _exit_now)


def _exit_now(signum: int, frame: object) -> None:
    os.write(2, f"{signal.Signals(signum).name} again: exiting at once\n".encode())
    os._exit(128 + signum)
