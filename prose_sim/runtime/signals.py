"""SIGINT, SIGTERM and SIGHUP during a run: stop cleanly on the first, exit at once on the next.

SLURM, Kubernetes and ``docker stop`` send SIGTERM before they kill; a closed
terminal sends SIGHUP. The first of these stops the run like Ctrl-C does (the
log is flushed, the summary of what is done is written, the resume command is
printed, exit 128 + the signal's number); from then on any of them exits the
process at once.
"""

from __future__ import annotations

import os
import signal
import threading

import anyio

from prose_sim.runtime.control import RunControl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def watch_signals(control: RunControl) -> None:
    """Until cancelled: turn the first stop signal into ``control.stop``."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread
    try:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
            async for signum in received:
                control.stop("signal", signal.Signals(signum).name, signum=int(signum))
                break
    except (ValueError, NotImplementedError, RuntimeError):  # no signals on this loop
        return
    exit_on_next_signal()


def exit_on_next_signal() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _exit_now)


def _exit_now(signum: int, frame: object) -> None:
    os.write(2, f"{signal.Signals(signum).name} again: exiting at once\n".encode())
    os._exit(128 + signum)
