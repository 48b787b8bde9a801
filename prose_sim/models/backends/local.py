"""The local backend: one in-process model server shared by every episode.

Requests from all episodes and roles that name the same model go to one
engine (``scheduler.py``) that schedules at the level of decode steps: a
request joins the running batch at the next iteration and leaves it, its
answer returned at once, when it ends; prompts are prefilled without padding,
in chunks, and shared prompt prefixes come from a bounded KV cache. The engine
runs on one dedicated worker thread (torch releases the GIL, so the event loop
keeps feeding it meanwhile; per-thread library state such as cuBLAS handles
stays warm, which measured 3x faster on an H100 than fresh pool threads).

Failure: a request whose caller gave up (cancelled, e.g. the gateway's
timeout) is dropped from the batch at the next iteration. A prompt the model
cannot take fails alone (``LocalRequestRejected``). A failing iteration (e.g.
out of memory) fails the requests in flight with ``LocalStepFailed``
(retryable) and the server goes on with a fresh KV cache; after
``max_step_failures`` failing iterations in a row, or if the worker dies, the
server is down and fails every request, queued or new, with
``LocalServerDown`` (not retryable).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import msgspec

from prose_sim.errors import LocalRequestRejected, LocalServerDown, LocalStepFailed, PromptTooLong
from prose_sim.events import BatchStats
from prose_sim.models.backends.scheduler import Engine, EngineStats, Sequence
from prose_sim.models.backends.server_stats import ratio, served_totals
from prose_sim.models.protocol import Completion, ModelRequest


class ServerStats(msgspec.Struct, kw_only=True):
    """Totals over a run, for the summary: the reporting windows' ``BatchStats`` summed
    (``served``), and what only the engine knows (prefix hits, KV use, rows)."""

    model: str
    device: str
    dtype: str
    batches: int = 0  # reporting windows (BatchServed events)
    cancelled: int = 0  # dropped because their caller gave up
    cancelled_tokens: int = 0  # tokens generated for those before they were dropped
    rejected: int = 0
    failed: int = 0  # failed by a failing iteration or a down server
    max_batch: int = 0  # most rows decoding together
    prefix_hit_tokens: int = 0
    prefill_tokens: int = 0
    row_steps: int = 0
    kv_positions: int = 0
    kv_padding: int = 0
    peak_kv_tokens: int = 0
    served: BatchStats = BatchStats()

    def absorb(self, engine: EngineStats) -> None:
        self.max_batch = engine.max_rows
        self.prefix_hit_tokens = engine.cached_tokens
        self.prefill_tokens = engine.prefill_tokens
        self.row_steps = engine.row_steps
        self.kv_positions = engine.kv_positions
        self.kv_padding = engine.kv_padding
        self.peak_kv_tokens = engine.peak_kv_tokens
        self.cancelled_tokens = engine.dropped_tokens

    def summary(self) -> dict[str, object]:
        served = self.served
        return {
            **served_totals(self, served, self.row_steps),
            "mean_batch": ratio(self.row_steps, served.steps),
            "kv_padding_share": ratio(self.kv_padding, self.kv_positions),
            "prefix_hit_rate": ratio(self.prefix_hit_tokens, served.prompt_tokens),
        }


class ServerLive(msgspec.Struct, frozen=True, kw_only=True):
    """What a server is doing right now (for the progress display)."""

    model: str
    queued: int  # requests waiting for a batch
    batch: int  # rows of the batch being decoded (0: idle)
    step: int  # tokens of the row that has decoded longest (0 while the rows read their prompts)
    max_steps: int  # that row's token budget
    busy_s: float = 0.0  # since the oldest running row was admitted


@dataclass(eq=False)
class _Job:
    seq: Sequence
    request: ModelRequest
    enqueued: float
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    cancelled: bool = False  # set by the caller's task, read by the worker
    wait_s: float = 0.0


OnBatch = Callable[[BatchStats], Coroutine[Any, Any, None]]

_STOP = object()


class LocalModelServer:
    """A Backend (``complete``) and an async context manager that runs the engine's worker thread."""

    def __init__(
        self,
        model,
        tokenizer,
        device: str,
        *,
        name: str,
        dtype: str = "",
        max_batch_size: int = 32,
        max_wait_s: float = 0.02,
        # default: half the free GPU memory on CUDA, 192 MiB elsewhere
        max_kv_tokens: int | None = None,
        prefill_chunk: int = 256,
        prefix_cache_tokens: int = 1024,
        max_step_failures: int = 3,
        release_idle_s: float = 1.0,
        report_every_steps: int = 64,
        on_batch: OnBatch | None = None,
    ):
        self.tokenizer = tokenizer
        self.engine = Engine(
            model,
            tokenizer,
            device,
            max_rows=max_batch_size,
            max_kv_tokens=max_kv_tokens,
            prefill_chunk=prefill_chunk,
            prefix_cache_tokens=prefix_cache_tokens,
        )
        # an idle server waits this long after a first request for others, so requests sent
        # together are prefilled together before decoding starts
        self.max_wait_s = max_wait_s
        self.max_step_failures = max(1, max_step_failures)
        self.release_idle_s = release_idle_s
        self.report_every_steps = max(1, report_every_steps)
        self.on_batch = on_batch
        self.stats = ServerStats(model=name, device=device, dtype=dtype)
        self.down: str = ""  # why the server is down, once it is
        self._inbox: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._window_start = EngineStats()
        self._window_answers: list[_Job] = []
        self._window_started = 0.0

    async def __aenter__(self) -> LocalModelServer:
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.Thread(target=self._work, name="prose-sim-model", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._inbox.put(_STOP)
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(thread.join)

    async def aclose(self) -> None:
        """Stop the worker if it runs (the Backend protocol's close; a second call does nothing)."""
        if self._thread is not None:
            await self.__aexit__(None, None, None)

    def live(self) -> ServerLive:
        """A snapshot for the progress display, read from its thread while the worker runs.

        ``batch`` is the rows running now (they join and leave at every step); ``step`` and
        ``max_steps`` are the tokens and budget of the row that has decoded longest."""
        engine = self.engine
        queued = self._inbox.qsize() + len(engine.waiting)
        running = list(engine.running)  # a copy: the worker thread changes the list
        if not running:
            return ServerLive(model=self.stats.model, queued=queued, batch=0, step=0, max_steps=0)
        lead = max(running, key=lambda seq: len(seq.output))
        started = min(seq.admitted_at for seq in running)
        return ServerLive(
            model=self.stats.model,
            queued=queued,
            batch=len(running),
            step=len(lead.output),
            max_steps=lead.budget,
            busy_s=max(0.0, time.perf_counter() - started),
        )

    def encode(self, request: ModelRequest) -> list[int]:
        """The prompt's token ids: chat template, generation prompt, then the response prefix."""
        text = self.tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text + request.response_prefix, add_special_tokens=False)["input_ids"]

    async def complete(self, request: ModelRequest) -> Completion:
        if self._thread is None:
            raise RuntimeError("the local model server is not running (use it as `async with`)")
        if self.down:
            raise LocalServerDown(self.down)
        seq = Sequence(
            prompt=self.encode(request),
            params=request.params,
            answer=request.answer,
            answer_prefix=request.response_prefix,
        )
        job = _Job(seq=seq, request=request, enqueued=time.perf_counter())
        seq.key = job
        self._inbox.put(job)
        if self.down:  # the worker stopped meanwhile: nobody will take the job
            raise LocalServerDown(self.down)
        try:
            await job.done.wait()
        finally:
            if (
                not job.done.is_set()
            ):  # the caller gave up: the worker drops it at its next iteration
                job.cancelled = True
                self._inbox.put(None)  # wakes an idle worker
        if job.error is not None:
            raise job.error
        text = self.tokenizer.decode(seq.output, skip_special_tokens=True)
        return Completion(
            text=request.response_prefix + text,
            input_tokens=len(seq.prompt),
            output_tokens=len(seq.output),
            # the OpenAI words: cut at max_new_tokens or the context is "length"
            finish_reason="length" if seq.finish in ("length", "context") else "stop",
        )

    # ------------------------------------------------------------------ the worker thread

    def _work(self) -> None:
        jobs: dict[int, _Job] = {}  # id(seq) -> job, for every job the engine holds
        failures = 0
        try:
            while True:
                if not self._take_new(jobs):
                    break
                for job in [j for j in jobs.values() if j.cancelled]:
                    self.engine.drop(job.seq)
                    jobs.pop(id(job.seq))
                    self.stats.cancelled += 1
                if not self.engine.busy:
                    continue
                try:
                    finished = self.engine.step()
                except Exception as exc:
                    failures += 1
                    lost = self.engine.reset()
                    if failures >= self.max_step_failures:
                        self.down = (
                            f"local model server {self.stats.model!r} is down: {failures} iterations in a row "
                            f"failed, the last with {type(exc).__name__}: {_one_line(exc)}"
                        )
                        break
                    error = LocalStepFailed(
                        f"local model server {self.stats.model!r}: an iteration failed with "
                        f"{type(exc).__name__}: {_one_line(exc)}; its {len(lost)} requests failed"
                    )
                    self._release([jobs.pop(id(seq)) for seq in lost if id(seq) in jobs], error)
                    self._clear_cuda()
                    continue
                failures = 0
                answered = [jobs.pop(id(seq)) for seq in finished]
                for job in answered:
                    job.wait_s = job.seq.admitted_at - job.enqueued
                self._window_answers.extend(answered)
                # reported before the answers go out, so the report precedes whatever they cause
                self._report(force=not self.engine.busy)
                self._release(answered, None)
        except BaseException as exc:
            self.down = self.down or (
                f"local model server {self.stats.model!r} is down: its worker stopped with "
                f"{type(exc).__name__}: {_one_line(exc)}"
            )
        finally:
            if self.down or jobs:
                stopped = LocalServerDown(
                    self.down or f"local model server {self.stats.model!r} stopped"
                )
                self.engine.reset()
                pending = list(jobs.values())
                while True:
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, _Job):
                        pending.append(item)
                self._release(pending, stopped)
            self._report(force=True)

    def _take_new(self, jobs: dict[int, _Job]) -> bool:
        """Move arrived requests into the engine; blocks while idle. False once the server stops."""
        block = not self.engine.busy
        deadline = None
        while True:
            try:
                if block:
                    item = self._idle_get()
                elif deadline is not None:
                    item = self._inbox.get(timeout=max(0.0, deadline - time.perf_counter()))
                else:
                    item = self._inbox.get_nowait()
            except queue.Empty:
                return True
            if item is _STOP:
                return False
            if item is None:  # a wake-up (a cancellation)
                if block:
                    return True
                continue
            if item.cancelled:
                self.stats.cancelled += 1
                continue
            try:
                self.engine.submit(item.seq)
            except PromptTooLong as exc:
                self.stats.rejected += 1
                self._release(
                    [item], LocalRequestRejected(f"local model server {self.stats.model!r}: {exc}")
                )
                continue
            jobs[id(item.seq)] = item
            if block:  # the first request after idling: gather the ones sent with it
                block = False
                deadline = time.perf_counter() + self.max_wait_s
            if deadline is not None and time.perf_counter() >= deadline:
                deadline = None

    def _idle_get(self):
        """The next inbox item for an idle worker. Idle for ``release_idle_s``: the KV storage
        is freed first (it is sized for the busiest moment, and the run's other models, e.g.
        the metrics', need memory while the server waits), then the wait goes on."""
        try:
            return self._inbox.get(timeout=self.release_idle_s)
        except queue.Empty:
            self.engine.release()
            self._clear_cuda()
            return self._inbox.get()

    def _release(self, jobs: list[_Job], error: BaseException | None) -> None:
        """Hand answers (or an error) back to the waiting callers, on the event loop."""
        if not jobs:
            return
        if error is not None:
            self.stats.failed += sum(not isinstance(error, LocalRequestRejected) for _ in jobs)
        for job in jobs:
            job.error = error
        # RuntimeError: the event loop is gone (shutting down): nobody waits any more
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(_set_all, jobs, token=self._token)

    def _report(self, *, force: bool) -> None:
        """Close the window of steps since the last report, once it has answers and enough
        steps (or ``force``): its ``BatchStats`` into the totals and out as a BatchServed report.
        ``force`` with no answers (the end) folds the last steps into the totals unreported."""
        engine = self.engine.stats
        self.stats.absorb(engine)
        start = self._window_start
        answers = self._window_answers
        if not force and (not answers or engine.steps - start.steps < self.report_every_steps):
            return
        waits = [job.wait_s for job in answers]
        window = BatchStats(
            size=len(answers),
            prompt_tokens=engine.prompt_tokens - start.prompt_tokens,
            padded_tokens=0,  # prompts are prefilled at their own length
            generated_tokens=engine.generated_tokens - start.generated_tokens,
            steps=engine.steps - start.steps,
            idle_row_steps=engine.idle_row_steps - start.idle_row_steps,
            wall_s=engine.busy_s - start.busy_s,
            queue_wait_s=sum(waits),
            max_queue_wait_s=max(waits, default=0.0),
        )
        self._window_start = msgspec.structs.replace(engine)
        self._window_answers = []
        self.stats.served = self.stats.served.plus(window)
        if not answers:
            return
        self.stats.batches += 1
        if self.on_batch is not None:
            with contextlib.suppress(Exception):  # a report that fails loses only the report
                anyio.from_thread.run(self.on_batch, window, token=self._token)

    def _clear_cuda(self) -> None:
        if str(self.engine.device).startswith("cuda"):
            self.engine.torch.cuda.empty_cache()


def _set_all(jobs: list[_Job]) -> None:
    for job in jobs:
        job.done.set()


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
