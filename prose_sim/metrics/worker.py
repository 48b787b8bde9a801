"""The run's metrics worker process: computes batches of jobs it is sent, by name.

``python -m prose_sim.metrics.worker`` reads frames on its standard input and answers each on
its standard output, until its input ends. A frame is a 4-byte big-endian length and that many
bytes of msgpack (msgspec):

- sent: a batch, ``[[job name, [arguments...]], ...]``;
- answered: one ``[ok, value]`` per job, in order: ``[true, its result]``, or ``[false, "Type:
  message"]`` when the job raised.

Only the jobs named in ``JOBS`` run (nothing sent is executed as code), and only plain data
crosses the pipe: no pickle. ``metrics.offloop`` starts the worker and speaks this protocol;
the same ``run_batch`` computes a batch in its thread when there is no worker, so each job's
answer is the same either way.

The worker ignores SIGINT, SIGTERM and SIGHUP (Ctrl-C on a terminal, a scheduler's or a closed
terminal's signal reach the whole process group): the run decides when it ends, by closing the
worker's input; a run that dies closes it too, and a worker that does not end is killed.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from prose_sim.metrics.scoring import TextMetrics, text_metrics

# job name -> (the function, the type its result decodes to)
JOBS: dict[str, tuple[Callable[..., Any], Any]] = {
    "text_metrics": (text_metrics, TextMetrics),
}
HEADER_BYTES = 4  # a frame's length, big-endian
MAX_FRAME_BYTES = 1 << 30  # a larger length means the stream is broken

Outcome = tuple[bool, Any]  # (True, result) or (False, "Type: message")


def job_name(function: Callable[..., Any]) -> str:
    """The name ``function`` runs under in ``JOBS`` (KeyError: it is not a job)."""
    for name, (known, _) in JOBS.items():
        if known is function:
            return name
    raise KeyError(f"{getattr(function, '__qualname__', function)!r} is not a metrics job")


def run_batch(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Outcome]:
    """Each ``(function, args)``'s (True, result), or (False, its exception as "Type: message")."""
    outcomes: list[Outcome] = []
    for function, args in jobs:
        try:
            outcomes.append((True, function(*args)))
        except Exception as exc:  # the caller's to raise, not the batch's
            outcomes.append((False, f"{type(exc).__name__}: {exc}"))
    return outcomes


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


def serve(stdin: Any, stdout: Any) -> None:
    """Answer frames from ``stdin`` (binary) on ``stdout`` until ``stdin`` ends."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(list[tuple[str, tuple[Any, ...]]])
    while True:
        header = stdin.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            return  # the run closed our input: done
        size = int.from_bytes(header, "big")
        if size > MAX_FRAME_BYTES:
            raise SystemExit(f"metrics worker: a frame of {size} bytes: the stream is broken")
        batch = decoder.decode(stdin.read(size))
        outcomes = run_batch([(JOBS[name][0], args) for name, args in batch])
        stdout.write(frame(encoder.encode(outcomes)))
        stdout.flush()


def main() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the run's to act on; it then closes our input
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the pipe
    serve(stdin, stdout)


if __name__ == "__main__":
    main()
