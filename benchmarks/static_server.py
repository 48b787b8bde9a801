"""The former local server, static batching: kept as the baseline of ``bench local``.

The server takes the first waiting request, waits at most ``max_wait_s`` for
more (up to ``max_batch_size``), and decodes them as one left-padded batch
until its longest row is done; only then does it take new requests. The run
uses ``prose_sim/models/backends/local.py`` (iteration-level scheduling); this one is only measured
against it, side by side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import anyio
import msgspec

from benchmarks.batching import BatchGenerator
from prose_sim.events import BatchStats
from prose_sim.models.backends.server_stats import ratio, served_totals
from prose_sim.models.protocol import Completion, ModelRequest


class StaticServerStats(msgspec.Struct, kw_only=True):
    """Totals over a run, for the summary: the batches' ``BatchStats`` summed."""

    model: str
    device: str
    dtype: str
    batches: int = 0
    max_batch: int = 0
    row_steps: int = 0
    served: BatchStats = BatchStats()

    def add(self, batch: BatchStats) -> None:
        self.batches += 1
        self.max_batch = max(self.max_batch, batch.size)
        self.row_steps += batch.size * batch.steps
        self.served = self.served.plus(batch)

    def summary(self) -> dict[str, object]:
        return {
            **served_totals(self, self.served, self.row_steps),
            "mean_batch": ratio(self.served.size, self.batches),
        }


@dataclass
class _Job:
    prompt: list[int]
    request: ModelRequest
    enqueued: float
    done: anyio.Event = field(default_factory=anyio.Event)
    tokens: list[int] | None = None
    error: BaseException | None = None


OnBatch = Callable[[BatchStats], Awaitable[None]]


class StaticBatchServer:
    """A Backend (``complete``) and an async context manager that runs the batching loop."""

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
        on_batch: OnBatch | None = None,
    ):
        self.tokenizer = tokenizer
        self.generator = BatchGenerator(model, tokenizer, device)
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self.stats = StaticServerStats(model=name, device=device, dtype=dtype)
        self._send, self._receive = anyio.create_memory_object_stream[_Job](math.inf)
        self._group: anyio.abc.TaskGroup | None = None
        # Every batch runs on this one thread: per-thread library state (cuBLAS
        # handles, cuDNN attention plans for each sequence length) then stays warm.
        # Measured on an H100, decoding in fresh pool threads was 3x slower.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prose-sim-model")

    async def __aenter__(self) -> StaticBatchServer:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._serve)
        return self

    async def __aexit__(self, *exc_info) -> bool | None:
        self._send.close()
        group, self._group = self._group, None
        if group is None:
            return None
        try:
            return await group.__aexit__(*exc_info)
        finally:
            self._worker.shutdown(wait=False)

    def encode(self, request: ModelRequest) -> list[int]:
        """The prompt's token ids: chat template, generation prompt, then the response prefix."""
        text = self.tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text + request.response_prefix, add_special_tokens=False)["input_ids"]

    async def complete(self, request: ModelRequest) -> Completion:
        if self._group is None:
            raise RuntimeError("the static batch server is not running (use it as `async with`)")
        job = _Job(prompt=self.encode(request), request=request, enqueued=time.perf_counter())
        await self._send.send(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        tokens = job.tokens or []
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Completion(
            text=request.response_prefix + text,
            input_tokens=len(job.prompt),
            output_tokens=len(tokens),
        )

    async def _serve(self) -> None:
        async with self._receive:
            while True:
                try:
                    first = await self._receive.receive()
                except anyio.EndOfStream:
                    return
                batch = [first]
                with anyio.move_on_after(self.max_wait_s):
                    while len(batch) < self.max_batch_size:
                        try:
                            batch.append(await self._receive.receive())
                        except anyio.EndOfStream:
                            break
                await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        waits = [started - job.enqueued for job in batch]
        try:
            pending = self._worker.submit(
                self.generator.run, [j.prompt for j in batch], [j.request.params for j in batch]
            )
            outputs, stats = await anyio.to_thread.run_sync(pending.result)
        except Exception as exc:  # e.g. out of memory: each request fails, the gateway retries
            for job in batch:
                job.error = exc
                job.done.set()
            return
        for job, tokens in zip(batch, outputs):
            job.tokens = tokens
            job.done.set()
        stats = msgspec.structs.replace(stats, queue_wait_s=sum(waits), max_queue_wait_s=max(waits))
        self.stats.add(stats)
        if self.on_batch is not None:
            await self.on_batch(stats)
