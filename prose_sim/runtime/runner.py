"""The runner: a prepared run in, a run folder out.

A run has three phases: ``prepare`` (``runtime.prepare``: every load and check,
nothing written), ``execute`` (here: lock, log, run, stop) and the outcome. The
runner runs the prepared episodes concurrently (at most ``concurrency`` at once)
against one shared model gateway, streams every event into one sink whose single
consumer writes the event log and feeds the results collector, and finally
writes ``results.csv`` and ``summary.json``.

Run folder (``prose_sim.runfolder``): ``scenario.toml`` (resolved),
``events.jsonl``, ``results.csv``, ``summary.json``, and ``run.lock``. A new run
goes only into a folder that is new or empty; the folder is locked for the run's
life.

A signal, a fatal model error, the circuit breaker, a write that fails (a
full disk) or the ``[budget]`` reached stops the run early (``control``): the episodes are cancelled, the
log gets every event published until then and a ``run_finished`` saying why,
and ``results.csv`` and ``summary.json`` hold what is done; ``run --resume``
continues from there.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec

from prose_sim import __version__
from prose_sim.config import BudgetSettings
from prose_sim.errors import RunIOError
from prose_sim.eventlog import EventLogWriter
from prose_sim.events import BatchServed, BatchStats, RunFinished, RunResumed, RunStarted
from prose_sim.metrics.offloop import OffLoop, choose_worker
from prose_sim.models.budget import BudgetState, Spend
from prose_sim.models.cache import ResponseCache
from prose_sim.models.recorded import RecordedResponses
from prose_sim.results.collector import MethodSummary, ResultsCollector, Usage, summarize_methods
from prose_sim.results.notice import smoke_notice
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.backends import BuiltModels
from prose_sim.runtime.bus import EpisodeBus
from prose_sim.runtime.control import RunControl
from prose_sim.runtime.cost import Projection, prior_spend, project, projection_line, shard_line
from prose_sim.runtime.episode import run_episode
from prose_sim.runtime.expected import plan_totals
from prose_sim.runtime.prepare import PreparedRun
from prose_sim.runtime.progress import ProgressDisplay
from prose_sim.runtime.setup import episode_world, open_cache, open_gateway
from prose_sim.runtime.signals import stop_on_signals
from prose_sim.runtime.sink import EventSink
from prose_sim.scenario.loading import scenario_tables
from prose_sim.templating import using_prompts
from prose_sim.world.assembly import ResolvedRun, scenario_personas

SINK_BUFFER = 8192


class RunOutcome(msgspec.Struct, kw_only=True):
    run_dir: str
    status: str  # completed | failed | interrupted (a signal) | stopped (see stop)
    episodes: int
    episodes_completed: int
    episodes_failed: int
    instances: int
    instances_failed: int  # ended failed; those a stopped run did not finish are unfinished
    events: int
    model_calls: int
    model_failures: int
    input_tokens: int
    output_tokens: int
    wall_s: float
    model_calls_per_s: float
    peak_rss_mb: float  # the run's process's peak and its metrics worker's, added
    concurrency: int
    methods: list[MethodSummary]
    usage: list[dict[str, object]]  # by role and purpose
    # by method, role and purpose, with calls and tokens per task instance
    method_usage: list[dict[str, object]] = []
    # local model servers: batches, tokens/s, queue wait, padding and idle waste
    servers: list[dict[str, object]] = []
    # answers from the response cache, and USD at the scenario's prices (cache hits cost 0)
    cached_calls: int = 0
    cost_usd: float = 0.0
    # rate-limited endpoints: limits, 429s seen, the adaptive concurrency cap
    endpoints: list[dict[str, object]] = []
    # attempts that failed (retried or not), and answers served from a recorded log
    failed_attempts: int = 0
    answers_from_log: int = 0
    # why the run stopped before its end: signal | fatal | breaker | io_error ("" when it did not),
    # the one line that says so, and the signal's number
    stop: str = ""
    stop_reason: str = ""
    signal: int = 0
    # "smoke test: ... not research results" when a role runs on the scripted or embedded model
    notice: str = ""
    instances_unfinished: int = 0
    # answers a model (or the response cache) gave in this session: not those kept from before
    # a resume, nor those served from a recorded log (a resumed, extended or rescored run)
    calls_made: int = 0
    # what the run spent (usd, calls sent to a model, their tokens; models.budget), the whole
    # run's, before a resume too; the [budget] it ran within (its limits set); what was
    # projected before the first call (runtime.cost); the shard it was ("K/N")
    spend: Spend = msgspec.field(default_factory=Spend)
    budget: dict[str, object] = {}
    projected: dict[str, object] = {}
    shard: str = ""


async def execute(
    prepared: PreparedRun, *, on_signal: Callable[[RunOutcome], None] | None = None
) -> RunOutcome:
    """Run a prepared run (``prepare.prepare``): open the response cache, lock the run
    folder, write it and run the episodes; the outcome, its files written.

    ``on_signal``: when given, a run stopped by a signal does not wait for its episodes to
    unwind (seconds with thousands in flight): once the log, ``results.csv`` and
    ``summary.json`` are written and closed, ``on_signal(outcome)`` is called from the event
    loop, and is expected to end the process (the command line's does).
    """
    options = prepared.options
    cache_path = Path(options.cache_path) if options.cache_path else None
    cache = open_cache(prepared.built, use_cache=options.use_cache, cache_path=cache_path)
    try:
        lock = RunFolder(prepared.run_dir).claim(new=prepared.prior is None)
    except BaseException:
        if cache is not None:
            cache.close()
        raise
    try:
        with using_prompts(prepared.scenario.prompts.dir):  # every render sees its folder
            return await _run_locked(prepared, cache, on_signal)
    finally:
        lock.release()


async def _run_locked(
    prepared: PreparedRun,
    cache: ResponseCache | None,
    on_signal: Callable[[RunOutcome], None] | None,
) -> RunOutcome:
    """The run itself, with the run folder locked."""
    run, run_dir, built, prior, recorded = (
        prepared.run,
        prepared.run_dir,
        prepared.built,
        prepared.prior,
        prepared.recorded,
    )
    scenario = run.scenario
    all_plans, plans, done, limit = (
        prepared.all_plans,
        prepared.plans,
        prepared.done,
        prepared.limit,
    )
    shard = prepared.shard
    folder = RunFolder(run_dir)
    collector = ResultsCollector()
    calls_kept = 0  # answers in the log from before a resume
    try:
        if prior is not None:
            kept = prior.kept_events()
            if prior.extension is not None and prior.started is not None:
                # the log's RunStarted becomes the larger scenario's, in its place
                grown = _run_started(prepared, extended=prior.started)
                kept = [grown if e is prior.started else e for e in kept]
            folder.rewrite_log(kept)  # the unfinished episodes start afresh
            collector.observe_all(kept)
            calls_kept = sum(u.calls for u in collector.usage_by_role_purpose.values())
            if prior.extension is not None or prior.stale_scenario:
                folder.write_scenario(scenario)  # after the log, which holds it too
        else:
            folder.write_scenario(scenario)
    except OSError as exc:
        if cache is not None:
            cache.close()
        raise RunIOError(exc.filename or run_dir, exc) from None
    servers = built.servers
    control = RunControl()
    budget = run_budget(scenario, prior)
    gateway = open_gateway(
        built, scenario, cache=cache, recorded=recorded, on_stop=control.stop, budget=budget
    )
    projected = project(
        plans,
        scenario.demonstrations_per_user,
        run.catalog,
        run.corpus,
        built.roles,
        built.layers,
        scenario.metrics.judge,
        {role: scenario.models.of(role) for role in built.roles},
    )
    roles = built.roles
    run_id = run_dir.name
    world = episode_world(
        run, run_id, gateway, built, embedder=prepared.embedder, scorer=prepared.scorer
    )
    world.checkpoint = control.checkpoint
    # the judges' text metrics, a batch at a time in a worker thread or process (metrics.offloop)
    world.offloop = offloop = OffLoop(
        choose_worker(prepared.options.metrics_worker, min(limit, len(plans)))
    )
    writer = folder.log_writer()
    statuses: list[str] = list(done.values())
    started = time.perf_counter()
    sink = EventSink(SINK_BUFFER)
    send = sink.sender()
    consumer = _Consumer(sink, writer, collector, control)
    # a publisher that finds the sink full drains it itself rather than waiting for the
    # consumer's next poll (with thousands of episodes a pass of the loop fills it)
    world.sink_full = consumer.drain
    ending: list[bool] = []  # not empty once the run's RunFinished is published

    def finished() -> RunFinished:
        ending.append(True)
        failed = statuses.count("failed")
        return RunFinished(
            status=control.status or ("completed" if not failed else "failed"),
            wall_s=time.perf_counter() - started,
            episodes_completed=statuses.count("completed"),
            episodes_failed=failed,
        )

    def conclude() -> RunOutcome:
        return _conclude(
            run,
            run_dir,
            built,
            collector,
            len(all_plans),
            statuses,
            started,
            limit,
            control,
            recorded,
            calls_kept,
            projected=projected,
            budget=scenario.budget,
            shard=shard,
            helpers_rss_mb=offloop.worker_peak_mb(),
        )

    display: ProgressDisplay | None = None  # the progress bar or lines, drawn from a thread

    def exit_on_signal() -> None:
        """Right after a signal, at the first checkpoint (the next event an episode
        publishes, or the loop's next callback), with the episodes left as they are: stop
        the progress display (its line finished), log what was published and the run's end,
        write and close everything, then hand over to ``on_signal``, which ends the process."""
        if ending or on_signal is None:  # the run had ended anyway
            return
        if display is not None:
            display.stop()
        consumer.drain()
        run_bus.publish_nowait(finished())
        consumer.drain()
        writer.close()
        if cache is not None:
            cache.close()
        on_signal(conclude())

    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(consumer.run)
            run_bus = EpisodeBus(run_id, "", send.clone())
            if on_signal is not None:
                control.exit_on_signal(exit_on_signal)
            async with send, contextlib.AsyncExitStack() as stack:
                for server in servers:  # local model servers run for the whole run
                    server.on_batch = _batch_reporter(run_bus, server.stats.model)
                    await stack.enter_async_context(server)
                stack.enter_context(stop_on_signals(control, then=control.checkpoint))
                with anyio.CancelScope() as work:  # what stopping the run cancels
                    control.attach(work)
                    totals = plan_totals(
                        all_plans,
                        scenario.demonstrations_per_user,
                        world.catalog,
                        roles["agent"].model,
                        scenario.metrics.judge,
                    )
                    display = ProgressDisplay(
                        collector,
                        totals,
                        prepared.options.progress,
                        None,
                        servers,
                        header=run_header(projected, shard, built),
                        budget=scenario.budget,
                        priced=projected.priced,
                    )
                    stack.callback(display.stop)  # at the run's end, before the servers stop
                    display.start()
                    if prior is not None and prior.started is not None:
                        await run_bus.publish(
                            RunResumed(
                                episodes_done=len(done),
                                episodes_rerun=len(plans),
                                answers_recorded=len(recorded) if recorded is not None else 0,
                                torn_line=prior.torn.lineno if prior.torn else 0,
                                extended=prior.extension.added if prior.extension else "",
                            )
                        )
                    else:
                        await run_bus.publish(_run_started(prepared))
                    limiter = anyio.CapacityLimiter(limit)

                    async def one(plan) -> None:
                        async with limiter:
                            # the limiter's checkpoint is shielded: a run stopped meanwhile
                            # starts no more episodes
                            await anyio.lowlevel.checkpoint_if_cancelled()
                            sender = send.clone()
                            try:
                                statuses.append(await run_episode(plan, world, sender))
                            finally:  # closed also when stopped, so the consumer can end
                                sender.close()

                    async with anyio.create_task_group() as metrics:
                        metrics.start_soon(offloop.serve)  # until every episode has ended
                        async with anyio.create_task_group() as episodes:
                            for plan in plans:
                                episodes.start_soon(one, plan)
                        metrics.cancel_scope.cancel()
                await run_bus.publish(finished())
                await run_bus.aclose()
            # the sink is closed: the consumer drains what is left, then ends
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await built.aclose()  # every backend the scenario built (not the caller's doubles)
        if cache is not None:
            cache.close()
    return conclude()


def _conclude(
    run: ResolvedRun,
    run_dir: Path,
    built: BuiltModels,
    collector: ResultsCollector,
    episodes: int,
    statuses: list[str],
    started: float,
    limit: int,
    control: RunControl,
    recorded: RecordedResponses | None,
    calls_kept: int = 0,
    *,
    projected: Projection | None = None,
    budget: BudgetSettings | None = None,
    shard: tuple[int, int] | None = None,
    helpers_rss_mb: float = 0.0,
) -> RunOutcome:
    """Write ``results.csv`` and ``summary.json`` of the run (its log closed); the outcome.
    ``calls_kept``: the answers in the log from before a resume; ``helpers_rss_mb``: the peak
    memory of the run's helper processes (the metrics worker), added to its own."""
    wall = time.perf_counter() - started
    folder = RunFolder(run_dir)
    rows = collector.rows()  # once, for results.csv and the summary
    if control.kind != "io_error":
        _write(
            folder.write_results, folder.results_path, collector.results_csv(rows).encode(), control
        )
    outcome = _outcome(run_dir, collector, rows, episodes, statuses, wall, limit)
    # the run's own peak and its metrics worker's, added (an upper bound: they may not coincide)
    outcome.peak_rss_mb = round(outcome.peak_rss_mb + helpers_rss_mb, 1)
    outcome.answers_from_log = recorded.served if recorded is not None else 0
    outcome.calls_made = outcome.model_calls - calls_kept - outcome.answers_from_log
    outcome.servers = [server.stats.summary() for server in built.servers]
    outcome.endpoints = [{"endpoint": key, **layer.stats()} for key, layer in built.layers.items()]
    outcome.notice = smoke_notice(run.scenario)
    outcome.spend = collector.spend.rounded()
    outcome.budget = _drop_none(msgspec.to_builtins(budget)) if budget is not None else {}
    if projected is not None:
        outcome.projected = msgspec.to_builtins(projected)
    outcome.shard = f"{shard[0]}/{shard[1]}" if shard else ""
    _stopped(outcome, control)
    if control.kind != "io_error":
        summary = msgspec.json.format(msgspec.json.encode(outcome))
        _write(folder.write_summary, folder.summary_path, summary, control)
    return _stopped(outcome, control)


def run_budget(scenario, prior) -> BudgetState | None:
    """The run's spend against its ``[budget]`` (None without one), counting what a resumed
    run spent before (``cost.prior_spend``)."""
    budget = scenario.budget
    if budget is None or not budget.limited:
        return None
    return BudgetState(budget, prior_spend(prior) if prior is not None else None)


def run_header(
    projected: Projection, shard: tuple[int, int] | None, built: BuiltModels
) -> list[str]:
    """The lines said before the first call: the cost projection of a run with priced models,
    what a shard takes of each endpoint's limits."""
    lines = [projection_line(projected)] if projected.priced else []
    share = shard_line(shard, built.roles, built.layers)
    return lines + ([share] if share else [])


def _drop_none(table: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in table.items() if v is not None}


def _stopped(outcome: RunOutcome, control: RunControl) -> RunOutcome:
    """The outcome, saying why the run stopped early when it did."""
    if control.kind:
        outcome.status = control.status
        outcome.stop, outcome.stop_reason, outcome.signal = (
            control.kind,
            control.message,
            control.signal,
        )
    return outcome


def _write(write: Callable[[bytes], None], path: Path, data: bytes, control: RunControl) -> None:
    """Write a results file whole, or stop the run naming it (a partial file is removed)."""
    try:
        write(data)
    except OSError as exc:
        control.stop("io_error", str(RunIOError(path, exc)))


def _batch_reporter(run_bus: EpisodeBus, model: str):
    async def report(stats: BatchStats) -> None:
        await run_bus.publish(BatchServed(model=model, batch=stats))

    return report


def _run_started(prepared: PreparedRun, extended: RunStarted | None = None) -> RunStarted:
    """The run's first event. ``extended``: the RunStarted of the smaller run that this one
    grows (``run --resume --extend``), whose place in the log the larger one takes."""
    run, shard = prepared.run, prepared.shard
    scenario = run.scenario
    started = RunStarted(
        scenario_name=scenario.name,
        scenario_digest=scenario.digest(),
        personas_digest=run.personas_digest(),
        prompts_dir=scenario.prompts.dir,
        templates=run.template_hashes(),
        scenario=scenario_tables(scenario),
        personas=msgspec.to_builtins(scenario_personas(scenario, run.catalog)),
        episodes=len(prepared.all_plans),
        version=__version__,
        shard=f"{shard[0]}/{shard[1]}" if shard else "",
        derived_from=prepared.derived_from,
    )
    if extended is None:
        return started
    return msgspec.structs.replace(
        started,
        run_id=extended.run_id,
        seq=extended.seq,
        ts=extended.ts,
        derived_from=extended.derived_from,
        extended_from=[*extended.extended_from, extended.scenario_digest],
    )


class _Consumer:
    """The single writer: log every event, feed the collector, flush when idle.

    A write that fails (a full disk) stops the run; what is published after is
    drained unwritten, so the log ends with the last whole line that fit. Nothing
    after the run's ``RunFinished`` is logged.

    It never holds an event across a wait (when idle it looks again every
    ``IDLE_POLL_S``, rather than being handed the next event), so ``drain`` can log
    everything published so far from any callback of the loop.
    """

    IDLE_POLL_S = 0.01

    def __init__(
        self,
        sink: EventSink,
        writer: EventLogWriter,
        collector: ResultsCollector,
        control: RunControl,
    ):
        self._sink = sink
        self._writer = writer
        self._collector = collector
        self._control = control
        self._ended = False

    async def run(self) -> None:
        try:
            while self.drain():  # noqa: ASYNC110 (polls: see the docstring)
                await anyio.sleep(self.IDLE_POLL_S)
        finally:
            self._sink.close()

    def drain(self) -> bool:
        """Log every event published so far and flush; whether more can come."""
        writer, observe = self._writer, self._collector.observe
        events, more = self._sink.take()
        # none after the run's RunFinished (episodes unwinding after a signal's quick exit),
        # none once a write failed
        if not self._ended and writer.broken is None:
            kept = 0
            for event in events:
                observe(event)
                kept += 1
                match event:
                    case RunFinished(episode_id=""):
                        self._ended = True
                        break
            _guarded(writer.write_all, self._control, events[:kept])
        _guarded(writer.flush, self._control)
        return more


def _guarded(write, control: RunControl, *args: object) -> None:
    try:
        write(*args)
    except RunIOError as exc:
        control.stop("io_error", str(exc))


def _outcome(
    run_dir: Path,
    collector: ResultsCollector,
    rows: list[dict[str, object]],
    episodes: int,
    statuses: list[str],
    wall: float,
    limit: int,
) -> RunOutcome:
    """The run's outcome from its collector and ``rows`` (the collector's ``rows()``)."""
    total = Usage()
    usage = []
    for (role, purpose), u in sorted(collector.usage_by_role_purpose.items()):
        total.merge(u)
        usage.append({"role": role, "purpose": purpose, **msgspec.structs.asdict(u)})
    instances_of: dict[str, int] = {}
    for r in rows:
        method = str(r["method"])
        instances_of[method] = instances_of.get(method, 0) + 1
    method_usage = []
    for (method, role, purpose), u in sorted(collector.usage_by_method.items()):
        n = max(1, instances_of.get(method, 0))
        method_usage.append(
            {
                "method": method,
                "role": role,
                "purpose": purpose,
                **msgspec.structs.asdict(u),
                "calls_per_instance": round(u.calls / n, 3),
                "tokens_per_instance": round((u.input_tokens + u.output_tokens) / n, 1),
            }
        )
    return RunOutcome(
        run_dir=str(run_dir),
        status="completed" if statuses.count("completed") == episodes else "failed",
        episodes=episodes,
        episodes_completed=statuses.count("completed"),
        episodes_failed=statuses.count("failed"),
        instances=len(rows),
        instances_failed=sum(r["status"] not in ("ok", "unfinished") for r in rows),
        instances_unfinished=sum(r["status"] == "unfinished" for r in rows),
        events=collector.events,
        model_calls=total.calls,
        model_failures=total.failed,
        failed_attempts=total.attempts - total.calls + total.cached,
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        cached_calls=total.cached,
        cost_usd=round(total.cost_usd, 6),
        wall_s=round(wall, 3),
        model_calls_per_s=round(total.calls / wall, 1) if wall > 0 else 0.0,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        concurrency=limit,
        methods=summarize_methods(rows),
        usage=usage,
        method_usage=method_usage,
    )
