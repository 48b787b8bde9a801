"""Metric work off the event loop: a batch at a time, in a worker thread or the run's metrics
worker process, each caller its own result or error, the same wherever it ran."""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading

import anyio
import anyio.lowlevel
import pytest
import structlog
from conftest import SCENARIOS

import prose_sim.metrics.offloop as offloop_module
from prose_sim.config import RunOptions
from prose_sim.errors import MetricFailed
from prose_sim.metrics.offloop import OffLoop, WorkerProcess, choose_worker
from prose_sim.metrics.scoring import text_metrics
from prose_sim.metrics.worker import job_name
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario

pytestmark = pytest.mark.anyio

DRAFT = "Short. Use bullet points: - one\n- two. \"Quoted,\" she said. Isn't it Mr. Smith's?"
USER = "A longer text 🎉 with emojis, a question? And a list:\n- first\n- second."
COMPONENTS = ["use bullet points", "include emojis", "adopt a playful tone"]
# (arguments of text_metrics) ; the last one raises inside the job (components is no list)
JOBS = [
    (DRAFT, USER, COMPONENTS, "use bullet points; be brief", True),
    (USER, DRAFT, COMPONENTS, "", False),
    (DRAFT, DRAFT, [], "include emojis", True),
    (DRAFT, USER, None, "x", True),
]


def square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


async def _outcomes(offloop: OffLoop, function, jobs) -> list[object]:
    """Each job's result, or its MetricFailed's message, asked all at once."""
    got: list[object] = [None] * len(jobs)

    async def ask(i: int) -> None:
        try:
            got[i] = await offloop.call(function, *jobs[i])
        except MetricFailed as exc:
            got[i] = f"MetricFailed: {exc}"

    async with anyio.create_task_group() as tg:
        tg.start_soon(offloop.serve)
        async with anyio.create_task_group() as callers:
            for i in range(len(jobs)):
                callers.start_soon(ask, i)
        tg.cancel_scope.cancel()
    return got


async def test_each_caller_gets_its_own_result_or_error():
    got = await _outcomes(OffLoop(), square, [(3,), (-2,), (5,)])
    assert got == [9, "MetricFailed: ValueError: negative: -2", 25]


async def test_calls_arriving_while_a_batch_computes_go_in_batches_of_16(monkeypatch):
    offloop = OffLoop()
    gate = threading.Event()
    batches: list[int] = []
    real_run_batch = offloop_module.run_batch

    def counted(jobs):
        batches.append(len(jobs))
        return real_run_batch(jobs)

    monkeypatch.setattr(offloop_module, "run_batch", counted)

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


async def test_the_worker_process_answers_as_the_thread_does():
    process = OffLoop("process")
    in_process = await _outcomes(process, text_metrics, JOBS)
    in_thread = await _outcomes(OffLoop("thread"), text_metrics, JOBS)
    assert process.gave_up == ""
    assert in_process == in_thread
    assert in_process[3].startswith("MetricFailed: TypeError: ")  # the job's own error
    assert in_process[0][0]["levenshtein"] > 0 and "use bullet points" in in_process[0][1]


async def test_the_worker_process_takes_only_named_jobs():
    with pytest.raises(KeyError, match="not a metrics job"):
        await OffLoop("process").call(square, 3)
    assert job_name(text_metrics) == "text_metrics"


async def test_a_closed_worker_exits_by_itself():
    worker = await WorkerProcess.start()
    assert await worker.run([(text_metrics, JOBS[2])]) == [(True, text_metrics(*JOBS[2]))]
    assert worker.peak_mb() > 5  # a Python process's memory, from the kernel
    await worker.aclose()
    assert worker.returncode == 0  # it read the end of its input; not killed


# a worker that answers its first batch, then ends with exit code 5
ANSWERS_ONCE = (
    "import sys; from prose_sim.metrics import worker as w\n"
    "class One:\n"
    "    def __init__(self, f): self.f, self.n = f, 0\n"
    "    def read(self, k):\n"
    "        self.n += 1\n"
    "        if self.n > 2: sys.exit(5)\n"
    "        return self.f.read(k)\n"
    "w.serve(One(sys.stdin.buffer), sys.stdout.buffer)\n"
)
BROKEN_WORKERS = {
    "cannot start": ["/nonexistent/python3"],
    "ends at once": [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('starting\\nno luck: it broke\\n'); sys.exit(3)",
    ],
    "answers garbage": [
        sys.executable,
        "-c",
        "import sys; sys.stdin.buffer.read(4); sys.stdout.buffer.write(b'\\0\\0\\0\\2\\xc1\\xc1')",
    ],
    "ends mid-run": [sys.executable, "-c", ANSWERS_ONCE],
}


@pytest.mark.parametrize("broken", sorted(BROKEN_WORKERS))
async def test_a_broken_worker_gives_way_to_the_thread_with_one_warning(broken):
    offloop = OffLoop("process", command=BROKEN_WORKERS[broken])
    jobs = JOBS * 10  # 40 calls: more than one batch
    with structlog.testing.capture_logs() as logs:
        got = await _outcomes(offloop, text_metrics, jobs)
    assert got == await _outcomes(OffLoop("thread"), text_metrics, jobs)
    warnings = [e for e in logs if e["event"] == "metrics_worker_gave_up"]
    assert len(warnings) == 1 and offloop.gave_up in warnings[0]["reason"]
    expected = {
        "cannot start": "could not start",
        "ends at once": "exit code 3: no luck: it broke",  # its last line on stderr
        "answers garbage": "DecodeError",
        "ends mid-run": "exit code 5",
    }[broken]
    assert expected in offloop.gave_up and offloop.gave_up


def test_auto_takes_the_process_for_many_episodes_on_two_cores():
    assert choose_worker("auto", 64, cpus=2) == "process"
    assert choose_worker("auto", 63, cpus=2) == "thread"
    assert choose_worker("auto", 10_000, cpus=1) == "thread"
    assert choose_worker("process", 1, cpus=1) == "process"
    assert choose_worker("thread", 10_000, cpus=16) == "thread"


def test_a_run_scores_the_same_in_the_thread_and_the_process(tmp_path):
    scenario = load_scenario(SCENARIOS / "methods.toml", ["demonstrations_per_user=2"])
    results, peaks = {}, {}
    for worker in ("thread", "process"):
        options = RunOptions(progress="off", metrics_worker=worker)
        run_dir = tmp_path / worker
        with structlog.testing.capture_logs() as logs:
            outcome = anyio.run(lambda: execute(prepare(scenario, run_dir, options)))  # noqa: B023
        assert not [e for e in logs if e["event"] == "metrics_worker_gave_up"]
        results[worker] = (run_dir / "results.csv").read_bytes()
        peaks[worker] = (
            outcome.peak_rss_mb - resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
    assert results["thread"] == results["process"]
    # the summary's peak memory is this process's, and the worker's added where there is one
    assert peaks["thread"] <= 1 and peaks["process"] > 5


async def test_the_worker_ignores_the_signals_the_run_acts_on():
    worker = await WorkerProcess.start()
    try:
        await worker.run([(text_metrics, JOBS[2])])  # it is serving (its handlers are set)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(worker.pid, sig)  # as Ctrl-C, a scheduler or a closed terminal would
        assert await worker.run([(text_metrics, JOBS[0])]) == [(True, text_metrics(*JOBS[0]))]
    finally:
        await worker.aclose()
    assert worker.returncode == 0


async def test_a_worker_that_writes_much_on_stderr_is_not_held_up():
    # 2 MB before it serves: a pipe nobody read (64 KB) would have stopped it for good
    chatty = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('x' * 2_000_000); sys.stderr.flush()\n"
        "from prose_sim.metrics.worker import main; main()",
    ]
    offloop = OffLoop("process", command=chatty)
    with anyio.fail_after(30):
        got = await _outcomes(offloop, text_metrics, JOBS)
    assert offloop.gave_up == "" and got == await _outcomes(OffLoop(), text_metrics, JOBS)
