"""``bench overhead``: what the simulator itself costs, next to a bare reference.

Each case runs in a fresh subprocess (so peak memory is its own), all in one
invocation so they share the machine's state:

- **reference**: the least a simulator of this shape can do: an anyio memory-
  stream bus, one backend task answering at once, and a msgspec JSON-lines log
  writer; each episode makes its calls one after another, logging a request
  and a response event per call.
- **full stack**: real scenarios on the scripted backend (every actor, the
  judge's questions and checks, the gateway, the event log, the results
  collector), with zero latency and with latency drawn around 1 s, at 1,000,
  5,000 and 10,000 concurrent episodes.

Reported: model calls/s, events/s, peak memory per episode (peak RSS during
the run minus RSS before it), and the share of wall time spent outside the
backend (zero latency; the backend's own time is measured around its calls) or
the simulator's CPU time per call (with latency).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import unittest.mock
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

from benchmarks.common import Check, SuiteResult

REPOSITORY = Path(__file__).resolve().parents[1]

CALLS_PER_REFERENCE_EPISODE = 20
CPU_US_PER_CALL_TARGET = 400  # issue 25: the full stack's CPU per model call, 1,000 episodes
# 9 PLUME users (both tasks) x seeds = episodes; 2 instances each, 7 calls an instance
USERS = 9


class Case(TypedDict):
    """One case, as its subprocess is given it (JSON on the command line)."""

    case: str  # "reference" or "full"
    episodes: int
    latency_s: NotRequired[float]  # full stack only; 0 when not given


class CaseFigures(TypedDict):
    """What one case measured (the subprocess prints it as JSON): a row of the suite's table."""

    case: str
    episodes: int
    latency_s: float
    calls: int
    events: int
    wall_s: float
    calls_per_s: float
    events_per_s: float
    peak_mb: float
    kb_per_episode: float
    outside_backend_share: float | str  # "" with latency (the backend's time is its sleep)
    cpu_us_per_call: float
    vs_reference: NotRequired[float]  # set by run(): calls/s over the reference's


def run(quick: bool = False) -> SuiteResult:
    sizes = (200, 1000) if quick else (1000, 5000, 10000)
    rows = [_in_subprocess({"case": "reference", "episodes": sizes[-1]})]
    for latency in (0.0, 1.0):
        for episodes in sizes:
            rows.append(
                _in_subprocess({"case": "full", "episodes": episodes, "latency_s": latency})
            )
    # the reference again, after: the ratios are over the faster of its two runs, so a slow
    # moment of the machine during one reference run cannot flatter them
    rows.append(_in_subprocess({"case": "reference", "episodes": sizes[-1]}))
    reference = max(r["calls_per_s"] for r in rows if r["case"] == "reference")
    for row in rows:
        row["vs_reference"] = round(row["calls_per_s"] / reference, 3)
    headline = next(
        r
        for r in rows
        if r["case"] == "full" and r["latency_s"] == 0.0 and r["episodes"] == sizes[-1]
    )
    shares = _components_in_subprocess(sizes[-1])
    zero = [r for r in rows if r["case"] == "full" and r["latency_s"] == 0.0]
    largest = max(
        (r for r in rows if r["case"] == "full"), key=lambda r: (r["episodes"], r["peak_mb"])
    )
    best = max(r["calls_per_s"] for r in zero)
    checks = [
        Check(
            name="calls/s at zero latency (full stack, best size)",
            measured=best,
            target=">= 10,000 calls/s",
            met=best >= 10_000,
        ),
        Check(
            name="full stack vs bare reference (calls/s ratio)",
            measured=round(best / reference, 3),
            target=">= 0.33 (within 3x)",
            met=best / reference >= 1 / 3,
        ),
        Check(
            name=f"peak memory, {largest['episodes']:,} concurrent episodes (MB)",
            measured=largest["peak_mb"],
            target="<= 1,024 MB",
            met=largest["peak_mb"] <= 1024,
        ),
        Check(
            name=f"CPU µs per model call (full stack, {sizes[-1]:,} episodes, zero latency)",
            measured=headline["cpu_us_per_call"],
            target=f"<= {CPU_US_PER_CALL_TARGET}",
            met=headline["cpu_us_per_call"] <= CPU_US_PER_CALL_TARGET,
        ),
    ]
    instructions = instructions_per_call()
    checks += instruction_checks(instructions)
    checks += [
        Check(
            name=f"CPU µs per call: {component}",
            measured=round(share * headline["cpu_us_per_call"], 1),
            target=f"{share:.1%} of the CPU",
            met=None,
        )
        for component, share in shares.items()
    ]
    return SuiteResult(
        suite="overhead",
        command="python -m benchmarks overhead" + (" --quick" if quick else ""),
        columns=[
            "case",
            "episodes",
            "latency_s",
            "calls",
            "events",
            "wall_s",
            "calls_per_s",
            "events_per_s",
            "peak_mb",
            "kb_per_episode",
            "outside_backend_share",
            "cpu_us_per_call",
            "vs_reference",
        ],
        rows=[dict(row) for row in rows],
        checks=checks,
        notes=[
            "reference: anyio memory-stream bus, one backend task, msgspec JSON-lines log, under the same "
            "relaxed GC as a run; run first and last, and vs_reference is calls/s over the faster "
            "of the two; "
            f"{CALLS_PER_REFERENCE_EPISODE} sequential calls per episode, all episodes at once",
            "full: scripted backend, PLUME users of both tasks x seeds, no_learning, 2 instances per "
            "episode, judge questions (PPCM per component + FPM) and verifiable checks on, BERTScore off; "
            "every episode in flight at once",
            "outside_backend_share: 1 - (time inside the backend's complete) / wall, at zero latency; "
            "cpu_us_per_call: CPU time per model call of the process and its children (the metrics "
            "worker process, which a run of 64 episodes or more in flight uses on two cores)",
            "latency 1.0: uniform in [0.5, 1.5] s per call",
            "CPU µs per call by component: the headline case's CPU per call split by where a "
            "profile (cProfile, in its own process) of the same case spent it: each function's own "
            "time goes to the component of its file; time in the standard library or a dependency "
            "goes to the prose_sim code that called it (in proportion to its calls' time); what no "
            "prose_sim code called is the event loop's; the text metrics run inline there (in a "
            "thread's place; in the run they are in the worker process). "
            + "; ".join(f"{name}: {', '.join(prefixes)}" for name, prefixes in COMPONENTS),
            INSTRUCTIONS_NOTE
            if instructions is not None
            else "instructions per call: not measured (valgrind is not installed)",
        ],
    )


# --- instructions per call (valgrind), where it is installed ---------------------------

# (smaller, larger) sizes of each case: the difference of their counts is per call, without
# the start-up both pay (Python, imports, the scenario's preparation)
INSTRUCTION_SIZES = {"full": (54, 216), "reference": (40, 160)}
INSTRUCTIONS_NOTE = (
    "instructions per call: what the run's own process executes per model call (valgrind's "
    "cachegrind, no cache simulation; PYTHONHASHSEED=0), the count of a smaller run taken from "
    "a larger one's so that start-up cancels out; the metrics worker, a child process on the "
    "other core, is not counted. Unlike calls/s it does not move with the machine's speed "
    "(repeat runs agree within 0.1%): a regression of a few % shows in it. It misses what the "
    "processor's caches cost: the full stack's calls/s ratio is lower than its instructions "
    "ratio"
)

INSTRUCTIONS_FULL = "instructions per call, full stack (its own process; valgrind)"
INSTRUCTIONS_REFERENCE = "instructions per call, bare reference (valgrind)"
INSTRUCTIONS_RATIO = "instructions ratio, reference / full stack"


class Instructions(TypedDict):
    """Instructions per model call of each case (its own process), and their ratio."""

    full: int
    reference: int
    reference_over_full: float


def instructions_per_call() -> Instructions | None:
    """Both cases' instructions per model call, or None where valgrind is not installed."""
    if shutil.which("valgrind") is None:
        return None
    per_call = {}
    for case, (small, large) in INSTRUCTION_SIZES.items():
        (a, calls_a), (b, calls_b) = (_instructions(case, n) for n in (small, large))
        per_call[case] = round((b - a) / (calls_b - calls_a))
    return {
        "full": per_call["full"],
        "reference": per_call["reference"],
        "reference_over_full": round(per_call["reference"] / per_call["full"], 3),
    }


def instruction_checks(instructions: Instructions | None) -> list[Check]:
    if instructions is None:
        return []
    return [
        Check(name=name, measured=measured, target="", met=None)
        for name, measured in (
            (INSTRUCTIONS_FULL, instructions["full"]),
            (INSTRUCTIONS_REFERENCE, instructions["reference"]),
            (INSTRUCTIONS_RATIO, instructions["reference_over_full"]),
        )
    ]


def _instructions(case: str, episodes: int) -> tuple[int, int]:
    """(instructions the case's process executed, model calls it made) under cachegrind."""
    valgrind = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
    ]
    done = subprocess.run(
        valgrind + _case_command({"case": f"count_{case}", "episodes": episodes}),
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    refs = parse_instruction_refs(done.stderr)
    if done.returncode != 0 or refs is None:
        raise RuntimeError(f"bench overhead: valgrind on {case} failed:\n{done.stderr[-2000:]}")
    return refs, int(done.stdout.strip().splitlines()[-1])


def parse_instruction_refs(stderr: str) -> int | None:
    """The total of cachegrind's summary line ("==PID== I   refs:      3,485,172,174")."""
    for line in stderr.splitlines():
        head, found, count = line.partition("I   refs:")
        if found and head.startswith("=="):
            return int(count.strip().replace(",", ""))
    return None


def _count_calls(case: str, episodes: int) -> int:
    """Run one case bare (no measuring around it), as ``_instructions`` counts it."""
    from prose_sim.gc_policy import relaxed_gc

    with relaxed_gc():
        if case == "reference":
            return anyio.run(_reference, episodes)[0]
        _import_full_stack()
        # the worker process at every size (auto would keep small runs in a thread)
        return anyio.run(_full_stack, episodes, 0.0, "process")[0]


# --- the history of the headline figures --------------------------------------------

HISTORY = "overhead_history.md"
_HISTORY_HEAD = """# bench overhead: history

The headline figures of every `bench overhead` run, newest last (one row per run; the rows
before 2026-12-01 were copied from earlier notes). Compare ratios, which are measured side by
side in one run, rather than absolute figures across machines: a ratio halving is a regression.

| date | command | cpus | full / bare (1,000 episodes) | CPU µs per call | note |
|---|---|---|--:|--:|---|
"""


def record_history(result: SuiteResult, out_dir: Path, note: str = "") -> Path:
    """Append this run's headline figures to ``overhead_history.md`` in ``out_dir`` (which
    ``RESULTS.md`` includes)."""
    path = out_dir / HISTORY
    row = next(
        (
            r
            for r in result.rows
            if r["case"] == "full" and r["latency_s"] == 0.0 and r["episodes"] == 1000
        ),
        None,
    )
    if row is None:
        return path
    measured = {check.name: check.measured for check in result.checks}
    full = measured.get(INSTRUCTIONS_FULL)
    if full is not None:  # the machine-independent figure beside the ratio
        counted = (
            f"instructions per call {full:,} (reference {measured[INSTRUCTIONS_REFERENCE]:,}; "
            f"ratio {measured[INSTRUCTIONS_RATIO]})"
        )
        note = f"{note}; {counted}" if note else counted
    text = path.read_text(encoding="utf-8") if path.exists() else _HISTORY_HEAD
    text += (
        f"| {result.date} | `{result.command}` | {result.machine.get('cpus', '')} "
        f"| {row['vs_reference']} | {row['cpu_us_per_call']:,.0f} | {note} |\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


# --- CPU by component -----------------------------------------------------------------

# component -> the prose_sim files it is made of (the first match wins); benchmarks/: this
# bench's own code (the timed wrapper around the scripted double)
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("metrics", ("metrics/",)),
    ("backend (scripted double)", ("models/backends/", "benchmarks/")),
    ("gateway", ("models/",)),
    ("log", ("eventlog.py", "scrub.py")),
    ("collector", ("results/",)),
    ("prompts (templates)", ("templating.py",)),
    ("actors", ("actors/", "parsing.py", "world/", "scales.py", "seeding.py")),
    ("runner and bus", ("runtime/", "events.py", "inbox.py")),
)
EVENT_LOOP = "event loop"
OTHER = "other prose_sim"


def _component(filename: str) -> str | None:
    path = filename.replace("\\", "/")
    _, found, inside = path.rpartition("/prose_sim/")
    if not found:
        _, found, rest = path.rpartition("/benchmarks/")
        if not found:
            return None
        inside = f"benchmarks/{rest}"
    for name, prefixes in COMPONENTS:
        if inside.startswith(prefixes):
            return name
    return OTHER


def component_shares(stats) -> dict[str, float]:
    """Each component's share of a profile's time (``pstats.Stats``), as ``run`` reports it."""
    table = stats.stats  # function -> (calls, primitive calls, own time, cumulative, callers)
    memo: dict[tuple, dict[str, float]] = {}

    def split(function: tuple, depth: int = 0) -> dict[str, float]:
        if function in memo:
            return memo[function]
        own = _component(function[0])
        if own is not None:
            memo[function] = {own: 1.0}
            return memo[function]
        memo[function] = {EVENT_LOOP: 1.0}  # while its callers are split: cycles end here
        callers = table.get(function, (0, 0, 0.0, 0.0, {}))[4]
        weight = sum(figures[2] for figures in callers.values())
        if not weight or depth > 50:
            return memo[function]
        out: dict[str, float] = {}
        for caller, figures in callers.items():
            for name, share in split(caller, depth + 1).items():
                out[name] = out.get(name, 0.0) + share * figures[2] / weight
        memo[function] = out
        return out

    totals: dict[str, float] = {}
    for function, (_calls, _primitive, own_time, _cumulative, _callers) in table.items():
        for name, share in split(function).items():
            totals[name] = totals.get(name, 0.0) + own_time * share
    grand = sum(totals.values()) or 1.0
    return dict(sorted(((n, t / grand) for n, t in totals.items()), key=lambda kv: -kv[1]))


def _components_in_subprocess(episodes: int) -> dict[str, float]:
    case = {"case": "components", "episodes": episodes}
    return json.loads(_case_output(case))["shares"]


def _case_command(case: Mapping[str, object]) -> list[str]:
    """The command that runs one bench case in a fresh interpreter (from ``REPOSITORY``)."""
    return [sys.executable, "-m", "benchmarks.overhead", json.dumps(case)]


def _case_output(case: Mapping[str, object]) -> str:
    """Run one bench case in a fresh interpreter; its last line of output (JSON)."""
    done = subprocess.run(
        _case_command(case),
        cwd=REPOSITORY,  # where `benchmarks` is found, whatever the caller's folder
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench overhead case {case} failed:\n{done.stderr[-2000:]}")
    print(f"  {done.stdout.strip()}", file=sys.stderr)
    return done.stdout.strip().splitlines()[-1]


def profile_components(episodes: int) -> dict[str, object]:
    """The full stack at zero latency under cProfile: each component's share of its CPU."""
    import cProfile
    import pstats

    from prose_sim.gc_policy import relaxed_gc

    async def inline(function, *args, **_options):
        """The profiler sees one thread: worker-thread work (the judge's text metrics) runs
        inline, so it is counted."""
        return function(*args)

    profiler = cProfile.Profile()
    with relaxed_gc(), unittest.mock.patch("anyio.to_thread.run_sync", inline):
        profiler.enable()
        anyio.run(_full_stack, episodes, 0.0, "thread")  # the metrics where the profiler sees them
        profiler.disable()
    shares = component_shares(pstats.Stats(profiler))
    return {"case": "components", "episodes": episodes, "shares": shares}


def _in_subprocess(case: Case) -> CaseFigures:
    return msgspec.json.decode(_case_output(case), type=CaseFigures)


# --- measuring one case (in its own process) --------------------------------------


class PeakRSS:
    """The peak resident memory of this process plus that of its child processes (the run's
    metrics worker), from the kernel's high-water marks (``getrusage``'s ``ru_maxrss``) read
    once the run is over: no sampling thread competes with the measured event loop for the
    GIL (a thread reading /proc every 20 ms cost the 1,000-episode case 7-10% of its calls
    a second). The two peaks are added as if they came at once: an upper bound."""

    def __enter__(self) -> PeakRSS:
        self.start_mb = self.peak_mb = _rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        self.peak_mb = max(own, self.start_mb) + children


def _rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_s() -> float:
    """CPU time of this process and of its children that have ended (the metrics worker
    ends with the run)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(case: Case) -> CaseFigures:
    from prose_sim.gc_policy import relaxed_gc

    episodes = case["episodes"]
    if case["case"] != "reference":
        _import_full_stack()  # as the reference's anyio and msgspec: imported before the clock
    with PeakRSS() as memory:
        cpu0, t0 = _cpu_s(), time.perf_counter()
        with relaxed_gc():  # both cases under a run's GC setting, to compare like with like
            if case["case"] == "reference":
                calls, events, backend_s = anyio.run(_reference, episodes)
            else:
                latency_s = case.get("latency_s", 0.0)
                calls, events, backend_s = anyio.run(_full_stack, episodes, latency_s)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    grown = max(0.0, memory.peak_mb - memory.start_mb)
    return {
        "case": case["case"],
        "episodes": episodes,
        "latency_s": case.get("latency_s", 0.0),
        "calls": calls,
        "events": events,
        "wall_s": round(wall, 2),
        "calls_per_s": round(calls / wall, 1),
        "events_per_s": round(events / wall, 1),
        "peak_mb": round(memory.peak_mb, 1),
        "kb_per_episode": round(grown * 1024 / episodes, 1),
        "outside_backend_share": round(1 - backend_s / wall, 3)
        if case.get("latency_s", 0.0) == 0
        else "",
        "cpu_us_per_call": round(cpu / calls * 1e6, 1),
    }


class _Call(msgspec.Struct, tag=True):
    episode: int
    n: int
    text: str


async def _reference(episodes: int) -> tuple[int, int, float]:
    """The bare minimum: bus, one backend task, JSON-lines log."""
    encoder = msgspec.json.Encoder()
    log_send, log_receive = anyio.create_memory_object_stream[_Call](8192)
    # each request with the stream its answer goes back on
    req_send, req_receive = anyio.create_memory_object_stream[
        tuple[_Call, MemoryObjectSendStream[_Call]]
    ](8192)
    counts = {"events": 0, "calls": 0}

    async def writer(path: Path) -> None:
        buffer = bytearray()
        # blocking writes between awaits, as the event log's writer does: the reference
        # must pay what the simulator pays
        with open(path, "ab") as handle:  # noqa: ASYNC230
            async with log_receive:
                async for event in log_receive:
                    encoder.encode_into(event, buffer, -1)
                    buffer.extend(b"\n")
                    counts["events"] += 1
                    if len(buffer) > 1 << 20:
                        handle.write(buffer)
                        buffer.clear()
            handle.write(buffer)

    async def backend() -> None:
        async with req_receive:
            async for request, reply in req_receive:
                await reply.send(_Call(episode=request.episode, n=request.n, text="answer " * 20))

    async def episode(i: int, log: MemoryObjectSendStream[_Call]) -> None:
        reply_send, reply_receive = anyio.create_memory_object_stream[_Call](1)
        async with log, reply_send, reply_receive:
            for n in range(CALLS_PER_REFERENCE_EPISODE):
                request = _Call(episode=i, n=n, text="prompt " * 50)
                await log.send(request)
                await req_send.send((request, reply_send))
                await log.send(await reply_receive.receive())
                counts["calls"] += 1

    with tempfile.TemporaryDirectory() as tmp:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, Path(tmp) / "events.jsonl")
            tg.start_soon(backend)
            async with log_send, req_send, anyio.create_task_group() as eps:
                for i in range(episodes):
                    eps.start_soon(episode, i, log_send.clone())
    return counts["calls"], counts["events"], 0.0


def _timed_scripted(settings):
    """The scripted backend, with the time it spends computing answers measured."""
    from prose_sim.models.backends.scripted import ScriptedBackend

    class TimedScripted(ScriptedBackend):
        busy_s = 0.0

        def compute(self, request, rng):
            t0 = time.perf_counter()
            try:
                return super().compute(request, rng)
            finally:
                self.busy_s += time.perf_counter() - t0

    return TimedScripted(settings)


def _import_full_stack() -> None:
    """Import what a run imports up front (Python's start, not the simulator's per-call cost:
    0.14-0.16 s of CPU, 3-4% of the 1,000-episode case)."""
    import prose_sim.actors.judge
    import prose_sim.runtime.prepare
    import prose_sim.runtime.runner  # noqa: F401


async def _full_stack(
    episodes: int, latency_s: float, metrics_worker: Literal["auto", "thread", "process"] = "auto"
) -> tuple[int, int, float]:
    from prose_sim.config import RunOptions
    from prose_sim.models.backends.scripted import ScriptedSettings
    from prose_sim.models.protocol import ROLES
    from prose_sim.runtime.prepare import Doubles, prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import scenario_from_dict

    seeds = max(1, round(episodes / USERS))
    raw = {
        "name": "overhead",
        "seeds": list(range(1, seeds + 1)),
        "demonstrations_per_user": 2,
        "tasks": {"summarization": {}, "email_writing": {}},
        "methods": {"no_learning": {}},
        "metrics": {"bertscore": ""},
    }
    scenario = scenario_from_dict(raw, "bench overhead")
    settings = ScriptedSettings(latency_s=latency_s, latency_jitter=0.5 if latency_s else 0.0)
    backend = _timed_scripted(settings)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = await execute(
            prepare(
                scenario,
                Path(tmp) / "run",
                RunOptions(progress="off", metrics_worker=metrics_worker),
                doubles=Doubles(backends={r: backend for r in ROLES}),
            )
        )
    return outcome.model_calls, outcome.events, backend.busy_s


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    if given["case"] == "components":
        print(json.dumps(profile_components(given["episodes"])))
    elif given["case"].startswith("count_"):
        print(_count_calls(given["case"].removeprefix("count_"), given["episodes"]))
    else:
        print(json.dumps(measure(msgspec.json.decode(sys.argv[1], type=Case))))
