"""``run``: run a scenario (``--resume`` continues an interrupted one), then its closing table."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import anyio
import msgspec
from rich.markup import escape
from rich.table import Table

from prose_sim.cli import common
from prose_sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_BUDGET,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    Signalled,
)
from prose_sim.errors import UsageError
from prose_sim.gc_policy import relaxed_gc
from prose_sim.metrics.registry import console_metrics
from prose_sim.untrusted import terminal_text

EXTEND_WITH_SET = Path("<the run's scenario with --set>")


def add_run(commands) -> None:

    run = commands.add_parser(
        "run",
        help="run a scenario",
        description="Run a scenario file.",
        epilog="exit codes: 0 done, every instance ok; 1 the run failed (failed instances, the "
        "circuit breaker); 2 bad input (a scenario, a key, a fatal model error); 3 the [budget] "
        "was reached: the run stopped there, resumable with --resume RUN_DIR and a raised "
        "budget (--set budget.max_usd=...); 128+N a signal N (130: Ctrl-C)",
    )
    run.add_argument(
        "scenario", type=Path, nargs="?", help="scenario TOML file (optional with --resume)"
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run in its folder: finished episodes are kept, the others "
        "start again with the answers they already got served from the log",
    )
    run.add_argument(
        "--extend",
        nargs="?",
        const=EXTEND_WITH_SET,
        type=Path,
        metavar="SCENARIO",
        help="with --resume: grow the run to a larger scenario (more seeds, users, tasks, "
        "methods or demonstrations per user; given as a file, or with --set on the run's own) "
        "and run only what is new, every answer already given served from the log",
    )
    run.add_argument("--out", type=Path, help="run folder (default: runs/<name>-<timestamp>)")
    run.add_argument("--concurrency", type=int, help="episodes in flight at once (default: all)")
    run.add_argument(
        "--metrics-worker",
        choices=("auto", "thread", "process"),
        default="auto",
        help="where the judges' text metrics are computed (default auto: a worker process from "
        "64 episodes in flight on two cores or more, else a thread; the results are the same)",
    )
    common.add_overrides(
        run, "override a scenario key, e.g. --set seeds=[1,2] --set models.user.latency_s=0.1"
    )
    common.add_progress(run)
    run.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="do not answer API model requests from the response cache (nor store answers in it)",
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run shard K of N of the grid (a deterministic share; join the shards with `merge`)",
    )
    run.add_argument(
        "--no-report",
        dest="write_report",
        action="store_false",
        help="skip report.md, report.csv, judge_qa.csv and the plots (make them later with `report`)",
    )
    run.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from prose_sim.config import RunOptions
    from prose_sim.runfolder import default_run_dir
    from prose_sim.runtime.backends import check_credentials
    from prose_sim.runtime.prepare import prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import load_run

    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    prior = None
    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise UsageError("--resume continues in the run's own folder; leave out --out")
        if args.extend is not None:
            from prose_sim.runtime.extend import load_extension

            if args.scenario is not None:
                raise UsageError(
                    "--extend takes the larger scenario: run --resume RUN_DIR --extend S.toml"
                )
            larger = None if args.extend == EXTEND_WITH_SET else args.extend
            prior = load_extension(args.resume, larger, args.overrides)
            assert prior.extension is not None
            print(f"extending {args.resume}: adds {prior.extension.added}", file=sys.stderr)
        else:
            prior = _resumed(args)
        _check_budget_left(prior, raised=any(o.startswith("budget.") for o in args.overrides))
        run, run_dir = prior.run, args.resume
        if prior.nothing_to_resume:
            print(
                f"nothing to resume: {run_dir} finished, every episode whole; "
                f"its results are in {run_dir}/results.csv (nothing was changed)",
                file=sys.stderr,
            )
            return EXIT_OK
        if prior.torn is not None:
            print(
                f"note: {run_dir}/events.jsonl: dropped a torn last line ({prior.torn.lineno}, "
                f"{prior.torn.length} bytes) left by the interruption",
                file=sys.stderr,
            )
    elif args.extend is not None:
        raise UsageError("--extend grows a recorded run: run --resume RUN_DIR --extend S.toml")
    elif args.scenario is None:
        raise UsageError("run needs a scenario file (or --resume RUN_DIR)")
    else:
        run = load_run(args.scenario, args.overrides)
        run_dir = args.out or default_run_dir(run.scenario)
    check_credentials(run.scenario, str(args.scenario or run_dir / "scenario.toml"))
    shard = None
    if args.shard is not None:
        from prose_sim.runtime.plan import parse_shard

        if prior is not None:
            raise UsageError("--resume continues the shard the run was; leave out --shard")
        shard = parse_shard(args.shard)
    _signals_before_the_run()
    try:
        with relaxed_gc():
            outcome = anyio.run(
                lambda: execute(
                    prepare(
                        run,
                        run_dir,
                        RunOptions(
                            concurrency=args.concurrency,
                            metrics_worker=args.metrics_worker,
                            progress=args.progress,
                            use_cache=args.use_cache,
                            shard=shard,
                        ),
                        prior=prior,
                    ),
                    on_signal=_exit_interrupted,
                )
            )
    except KeyboardInterrupt:
        print(
            f"interrupted: the event log is flushed; continue with\n"
            f"  python -m prose_sim run --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    resume = f"python -m prose_sim run --resume {run_dir}"
    if prior is not None:
        print(
            f"resumed: {len(prior.finished)} finished episodes kept; {outcome.calls_made:,} "
            f"model calls made, {outcome.answers_from_log:,} answers served from the log",
            file=sys.stderr,
        )
    if outcome.stop == "signal":
        return _say_interrupted(outcome)
    if outcome.stop == "budget":
        return _say_budget(outcome, resume)
    if outcome.stop:
        nothing_more = "nothing more was asked; " if outcome.stop == "fatal" else ""
        print(
            f"error: {terminal_text(outcome.stop_reason)}; {nothing_more}once fixed, continue with: {resume}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT if outcome.stop == "fatal" else EXIT_RUN_FAILED
    _print_summary(outcome)
    if args.write_report:
        from prose_sim.report.build import Report

        say = common.console()
        say.print(f"report: reading {run_dir}/events.jsonl…", highlight=False)
        report = Report([run_dir])
        say.print(
            "report: writing report.md, report.csv, judge_qa.csv and the plots…", highlight=False
        )
        report.write(run_dir)
        say.print(f"report: {run_dir}/report.md (plots and judge_qa.csv beside it)")
    if outcome.status != "completed" or outcome.instances_failed:
        print(
            f"error: {outcome.instances_failed} of {outcome.instances} task instances failed "
            f"({outcome.episodes_failed} of {outcome.episodes} episodes failed); see {run_dir}/events.jsonl",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED
    return EXIT_OK


def _resumed(args: argparse.Namespace):
    """The run to resume, its ``--set budget.*`` overrides applied (a resumed run may raise its
    budget, nothing else)."""
    from prose_sim.runtime.resume import load_prior
    from prose_sim.scenario.loading import split_budget_overrides, with_budget_overrides

    budget_sets, others = split_budget_overrides(args.overrides)
    prior = load_prior(args.resume, args.scenario, others)
    if budget_sets:
        scenario = with_budget_overrides(prior.run.scenario, budget_sets, "--set")
        prior.run = msgspec.structs.replace(prior.run, scenario=scenario)
    return prior


def _check_budget_left(prior, *, raised: bool) -> None:
    """Refuse a resumed run that its budget stopped, its budget not raised (exit 2, naming how
    to raise it); the budget counts the whole run's spend."""
    from prose_sim.runtime.cost import check_budget_left

    if not prior.nothing_to_resume:
        check_budget_left(prior, prior.run.scenario.budget, raised=raised)


def _say_budget(outcome, resume: str) -> int:
    """What the run spent when its budget stopped it, and how to go on; the exit code."""
    _print_summary(outcome)
    print(
        f"stopped: {terminal_text(outcome.stop_reason)}; no call was cut off, the event "
        f"log is closed and summary.json holds the spend; to go on, raise the budget: "
        f"{resume} --set budget.KEY=VALUE",
        file=sys.stderr,
    )
    return EXIT_BUDGET


def _say_interrupted(outcome) -> int:
    """What is done and how to continue, after a signal; the exit code."""
    _print_summary(outcome)
    print(
        f"interrupted ({terminal_text(outcome.stop_reason)}): the event log is flushed and "
        f"summary.json holds what is done; continue with\n"
        f"  python -m prose_sim run --resume {outcome.run_dir}",
        file=sys.stderr,
    )
    return 128 + outcome.signal


def _exit_interrupted(outcome) -> None:
    """A run stopped by a signal, its files written and closed: exit now, without waiting for
    thousands of cancelled episodes to unwind or the interpreter to tear down what they hold
    (seconds each); nothing is left to write."""
    code = _say_interrupted(outcome)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _signals_before_the_run() -> None:
    """SIGTERM and SIGHUP end the command cleanly until the run watches them itself."""

    def raise_signalled(signum, frame):
        raise Signalled(signum)

    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, raise_signalled)


def _fmt(value: float, err: float | None = None) -> str:
    if value != value:  # nan
        return "-"
    text = f"{value:.3f}"
    if err is not None and err == err:
        text += f" ± {err:.3f}"
    return text


def _shown(text: str) -> str:
    """Text from a run (a label, a path) as the console shows it: no control characters,
    no console markup."""
    return escape(terminal_text(text))


def _print_summary(outcome) -> None:
    console = common.console()
    # headline metrics only (report.md has them all)
    shown = [n for n in console_metrics() if outcome.methods and n in outcome.methods[0].metrics]
    metric_names = [n for n in shown if any(m.metrics[n] == m.metrics[n] for m in outcome.methods)]
    table = Table(title=f"prose_sim results ({_shown(outcome.run_dir)})")
    for column in ["task", "framework", "method", "instances", "failed"]:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps names, never cuts
    # numbers are never cut: their columns keep the widest value's width, the names fold
    for name in metric_names:
        widest = max(
            len(name), *(len(_fmt(m.metrics[name], m.stderr[name])) for m in outcome.methods)
        )
        table.add_column(name, justify="right", min_width=widest, overflow="fold")
    table.add_column("calls/inst", justify="right", overflow="fold")
    table.add_column("tokens/inst", justify="right", overflow="fold")
    if "bertscore" in metric_names:  # which BERTScore, and whether the paper's compares
        from prose_sim.report.build import run_bertscore_note

        table.caption = run_bertscore_note(Path(outcome.run_dir))
    for m in outcome.methods:
        table.add_row(
            _shown(m.task),
            _shown(m.framework),
            _shown(m.method),
            str(m.instances),
            str(m.failed) + (f" ({m.unfinished} unfinished)" if m.unfinished else ""),
            *[_fmt(m.metrics[n], m.stderr[n]) for n in metric_names],
            f"{m.calls_per_instance:.1f}",
            f"{m.tokens_per_instance:.0f}",
        )
    console.print(table)
    unparsed = [
        f"{u['role']}/{u['purpose']} {u['parse_failures']}/{max(int(u['parse_failures']), int(u['calls']))}"
        for u in outcome.usage
        if u["parse_failures"]
    ]
    if unparsed:
        console.print("unparseable answers (failed/total): " + ", ".join(unparsed), highlight=False)
    truncated = [
        f"{u['role']}/{u['purpose']} {u['truncated']}/{u['calls']}"
        for u in outcome.usage
        if u.get("truncated")
    ]
    if truncated:  # cut at max_new_tokens by the server (finish_reason "length")
        console.print("truncated answers (n/N): " + ", ".join(truncated), highlight=False)
    console.print(
        f"{outcome.episodes_completed}/{outcome.episodes} episodes, {outcome.instances} instances "
        f"({outcome.instances_failed} failed"
        + (f", {outcome.instances_unfinished} unfinished" if outcome.instances_unfinished else "")
        + f"), {outcome.model_calls:,} model calls "
        f"({outcome.model_failures} failed; {outcome.failed_attempts:,} failed attempts), {outcome.input_tokens + outcome.output_tokens:,} tokens, "
        f"{outcome.events:,} events in {outcome.wall_s:.1f} s "
        f"({outcome.model_calls_per_s:,.1f} calls/s, peak RSS {outcome.peak_rss_mb:.0f} MB)"
    )
    if outcome.cached_calls or outcome.cost_usd:
        by_role: dict[str, float] = {}
        for u in outcome.usage:
            by_role[str(u["role"])] = by_role.get(str(u["role"]), 0.0) + float(u["cost_usd"])
        roles = ", ".join(f"{role} ${cost:,.4f}" for role, cost in by_role.items())
        console.print(
            f"{outcome.cached_calls:,} calls answered from the response cache; "
            f"cost ${outcome.cost_usd:,.4f} ({roles}; by purpose and method in summary.json)"
        )
    if outcome.budget or outcome.cost_usd:
        spend, projected = outcome.spend, outcome.projected
        said = f"spent ${spend.usd:,.4f}, {spend.calls:,} calls, {spend.tokens:,} tokens"
        if projected:
            said += f" (projected before the first call: ~${float(projected['usd']):,.2f})"
        console.print(said, highlight=False)
    console.print(f"results: {outcome.run_dir}/results.csv  log: {outcome.run_dir}/events.jsonl")
    if outcome.notice:
        console.print(f"[bold red]{outcome.notice}[/]", highlight=False)
