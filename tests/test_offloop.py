"""Metric work off the event loop: one worker thread, a batch at a time, each caller its own
result or exception."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import pytest

import prose_sim.metrics.offloop as offloop_module
from prose_sim.metrics.offloop import OffLoop

pytestmark = pytest.mark.anyio


def square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


async def test_each_caller_gets_its_own_result_or_exception():
    offloop = OffLoop()
    got: dict[int, object] = {}

    async def ask(x: int) -> None:
        try:
            got[x] = await offloop.call(square, x)
        except ValueError as exc:
            got[x] = str(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(offloop.serve)
        async with anyio.create_task_group() as callers:
            for x in (3, -2, 5):
                callers.start_soon(ask, x)
        tg.cancel_scope.cancel()
    assert got == {3: 9, -2: "negative: -2", 5: 25}


async def test_calls_arriving_while_the_thread_computes_go_to_it_in_batches_of_16(monkeypatch):
    offloop = OffLoop()
    gate = threading.Event()
    batches: list[int] = []
    real_run_all = offloop_module._run_all

    def counted(jobs):
        batches.append(len(jobs))
        return real_run_all(jobs)

    monkeypatch.setattr(offloop_module, "_run_all", counted)

    def held(x: int) -> int:  # keeps the first batch in the thread until the gate opens
        assert gate.wait(10)
        return x

    results: list[int] = []

    async def ask(function, x: int) -> None:
        results.append(await offloop.call(function, x))

    async with anyio.create_task_group() as tg:
        tg.start_soon(offloop.serve)
        async with anyio.create_task_group() as callers:
            callers.start_soon(ask, held, 0)
            while not batches:  # the first batch is in the thread
                await anyio.lowlevel.checkpoint()
            for x in range(1, 21):
                callers.start_soon(ask, square, x)
            for _ in range(25):  # they are queued behind it
                await anyio.lowlevel.checkpoint()
            gate.set()
        tg.cancel_scope.cancel()
    assert offloop_module.BATCH == 16 and batches == [1, 16, 4]
    assert sorted(results) == [0] + [x * x for x in range(1, 21)]
