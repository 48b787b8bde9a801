"""CPU-bound metric work, off the event loop, a batch at a time: in a worker thread or in the
run's metrics worker process.

The judges' text metrics (tokenizing and checking a draft and a user text) take about half a
millisecond an instance: run on the loop, a thousand episodes' scoring would stall it; handed
to a thread one instance at a time, each hand-over costs a wake-up of the thread, one of the
loop and passes of the GIL between them: the 1,000-episode case of bench overhead used 271-278
CPU µs a model call so, and 192-194 with the batches below (the same sitting, alternated).

Here the calls wait in a queue while a batch computes; when it is done, the next ones (up to
``BATCH``, oldest first) go as one batch. Each caller gets its own call's result: what it gets
never depends on how the calls were batched, nor on where they ran.

Where they run (``worker``):

- ``"thread"``: one worker thread. Under the GIL it competes with the event loop for one core.
- ``"process"``: the run's metrics worker process (``metrics.worker``), on a core of its own:
  the 1,000-episode case of bench overhead made 17-28% more model calls a second so (the same
  sitting, alternated). It costs a process start (about 0.1 s, while the first episodes
  draft) and its memory (a peak of about 50 MB). Only the jobs ``metrics.worker.JOBS`` names go there.
  If the process cannot start or ends mid-run, one warning says why and the thread takes over,
  beginning with the batch that was lost: nothing is lost and every result is the same.

``choose_worker`` is the run's policy (``RunOptions.metrics_worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
import msgspec
import structlog
from anyio.streams.buffered import BufferedByteReceiveStream

from prose_sim.errors import MetricFailed, cut
from prose_sim.metrics.worker import (
    HEADER_BYTES,
    JOBS,
    MAX_FRAME_BYTES,
    Outcome,
    frame,
    job_name,
    run_batch,
)

T = TypeVar("T")
Worker = Literal["thread", "process"]

log = structlog.get_logger("prose_sim")

# calls a batch takes at most: uncapped, the 10,000-episode case of bench overhead sent all
# its first scorings (9,999) as one batch, and the judges then all resumed at once with their
# questions: peak RSS 1,037 MB, against 561 MB at 16 a batch (560 at 8, 564 at 128) and 579
# with a thread hop per call. Per call, 16 costs the same CPU as 8 (201 µs at 1,000 episodes)
BATCH = 16
# "auto" takes the process from this many episodes in flight at once (fewer score too rarely
# to pay for its start), and only with a second core to put it on
PROCESS_FROM_EPISODES = 64
WORKER_COMMAND = (sys.executable, "-m", "prose_sim.metrics.worker")
STOP_WAIT_S = 2.0  # how long a closed worker may take to exit before it is killed
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where the worker finds prose_sim

_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def available_cpus() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_worker(setting: str, in_flight: int, cpus: int | None = None) -> Worker:
    """Where a run computes its text metrics: ``setting`` ("auto", "thread" or "process") with
    ``in_flight`` episodes at once. "auto": the process when at least
    ``PROCESS_FROM_EPISODES`` episodes run at once on a machine with two cores or more."""
    if setting in ("thread", "process"):
        return setting  # type: ignore[return-value]
    cpus = available_cpus() if cpus is None else cpus
    return "process" if in_flight >= PROCESS_FROM_EPISODES and cpus >= 2 else "thread"


class WorkerBroken(Exception):
    """The metrics worker process cannot take (more) work: why, in one line."""


class WorkerProcess:
    """The run's end of a ``metrics.worker`` process: a batch out, its outcomes back."""

    def __init__(self, process: anyio.abc.Process, stderr: IO[bytes] | None = None):
        """``stderr``: the file its standard error goes to (read when it fails)."""
        self._process = process
        self._stderr = stderr
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[tuple[bool, msgspec.Raw]])

    @classmethod
    async def start(cls, command: Sequence[str] = WORKER_COMMAND) -> WorkerProcess:
        """A started worker (``WorkerBroken`` when it cannot be started)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        # its standard error in a file, never a pipe (a full pipe nobody reads would stop it)
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the worker)
        try:
            process = await anyio.open_process(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
            )
        except OSError as exc:
            stderr.close()
            raise WorkerBroken(f"it could not start: {exc}") from exc
        return cls(process, stderr)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """Its exit code (None while it runs)."""
        return self._process.returncode

    async def run(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Outcome]:
        """The outcome of each job, in order (``WorkerBroken`` when the worker fails)."""
        names = [job_name(function) for function, _ in jobs]
        sent = self._encoder.encode([(name, args) for name, (_, args) in zip(names, jobs)])
        try:
            await self._stdin.send(frame(sent))
            size = int.from_bytes(await self._stdout.receive_exactly(HEADER_BYTES), "big")
            if size > MAX_FRAME_BYTES:
                raise WorkerBroken(f"it answered a frame of {size} bytes")
            answers = self._decoder.decode(await self._stdout.receive_exactly(size))
            if len(answers) != len(jobs):
                raise WorkerBroken(f"it answered {len(answers)} jobs of {len(jobs)}")
            return [
                (ok, msgspec.msgpack.decode(raw, type=JOBS[name][1] if ok else str))
                for name, (ok, raw) in zip(names, answers)
            ]
        except WorkerBroken:
            raise
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError) as exc:
            raise WorkerBroken(await self._ended()) from exc
        except (anyio.ClosedResourceError, OSError, msgspec.MsgspecError) as exc:
            raise WorkerBroken(f"{type(exc).__name__}: {exc}") from exc

    async def _ended(self) -> str:
        """Why the worker stopped answering: its exit and the last line it wrote on stderr."""
        code = None
        with anyio.move_on_after(STOP_WAIT_S):
            code = await self._process.wait()
        last = ""
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                size = self._stderr.seek(0, os.SEEK_END)
                self._stderr.seek(max(0, size - 65536))
                tail = self._stderr.read().decode(errors="replace")
                lines = [ln for ln in tail.splitlines() if ln.strip()]
                last = f": {cut(lines[-1].strip(), 300)}" if lines else ""
        ended = "it is still running" if code is None else f"it ended with exit code {code}"
        return f"{ended}{last}"

    def peak_mb(self) -> float:
        """Its peak resident memory so far (the kernel's high-water mark; 0.0 where /proc does
        not say, or once it has ended)."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024  # kB
        except (OSError, ValueError, IndexError):
            pass
        return 0.0

    async def aclose(self) -> None:
        """Close its input (it exits), wait a little, kill it if it has not."""
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await self._stdin.aclose()
            with anyio.move_on_after(STOP_WAIT_S):
                await self._process.wait()
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
            with contextlib.suppress(Exception):
                await self._process.aclose()
            if self._stderr is not None:
                self._stderr.close()


class OffLoop:
    """Runs ``call``s off the event loop, batched, in a thread or the metrics worker process
    (``worker``); ``serve`` runs in a task of the run's for as long as calls may come."""

    def __init__(self, worker: Worker = "thread", command: Sequence[str] = WORKER_COMMAND):
        """``command``: how the worker process starts (tests start broken ones)."""
        self.worker = worker
        self.command = tuple(command)
        self.gave_up = ""  # why the worker process was given up for the thread ("" if not)
        self._worker_peak_mb = 0.0  # of the worker processes that have ended
        self._live: WorkerProcess | None = None  # the worker process while it serves
        self._pending: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None  # set when a call comes to an idle server

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` computed off the loop; ``MetricFailed`` if it raised. With the
        worker process, ``function`` must be one of ``metrics.worker.JOBS``."""
        if self.worker == "process":
            job_name(function)  # KeyError at once, not in the worker
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((function, args, future))
        if self._arrived is not None:
            self._arrived.set()
        ok, value = await future
        if not ok:
            raise MetricFailed(value)
        return value

    async def serve(self) -> None:
        """Compute what is queued, batch after batch, until cancelled."""
        process = await self._start() if self.worker == "process" else None
        self._live = process
        try:
            while True:
                if not self._pending:
                    self._arrived = asyncio.Event()
                    await self._arrived.wait()
                    self._arrived = None
                pending = self._pending
                batch = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
                jobs = [(function, args) for function, args, _ in batch]
                outcomes: list[Outcome] | None = None
                if process is not None:
                    try:
                        outcomes = await process.run(jobs)
                    except WorkerBroken as exc:
                        await self._retire(process)
                        process = None
                        self._give_up(f"it stopped answering ({exc})")
                if outcomes is None:
                    outcomes = await anyio.to_thread.run_sync(run_batch, jobs)
                for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # else its caller was cancelled meanwhile
                        future.set_result(outcome)
        finally:
            if process is not None:
                await self._retire(process)

    async def _retire(self, process: WorkerProcess) -> None:
        """Keep the worker's peak memory, then close it."""
        self._worker_peak_mb = max(self._worker_peak_mb, process.peak_mb())
        self._live = None
        await process.aclose()

    def worker_peak_mb(self) -> float:
        """The worker process's peak resident memory (MB; 0.0 with the thread): what a run's
        own peak leaves out."""
        live = self._live.peak_mb() if self._live is not None else 0.0
        return max(self._worker_peak_mb, live)

    async def _start(self) -> WorkerProcess | None:
        try:
            return await WorkerProcess.start(self.command)
        except WorkerBroken as exc:
            self._give_up(str(exc))
            return None

    def _give_up(self, why: str) -> None:
        self.gave_up = why
        log.warning(
            "metrics_worker_gave_up",
            reason=f"the metrics worker process: {why}",
            then="the text metrics go on in a thread (results are the same)",
        )
