"""Command line: ``python -m prose_sim <command>`` (also installed as ``prose-sim``).

Exit codes: 0 success; 1 a run with failed task instances, stopped by the
circuit breaker or by an I/O error (a full disk); 2 bad input or a fatal model
error (a wrong key, an unknown model, an unreachable endpoint), one line on
stderr, no traceback; 128 + the signal's number when stopped by a signal (130
SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, cast

import anyio
import structlog
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prose_sim import __version__
from prose_sim.errors import RunIOError, UsageError
from prose_sim.untrusted import terminal_text

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
BENCH_SUITES = ("overhead", "ratelimits", "variants", "local")


@contextlib.contextmanager
def relaxed_gc(threshold: int = 100_000) -> Iterator[None]:
    """Collect cyclic garbage less often while a run is in flight.

    Thousands of live episodes hold millions of objects, and CPython's default
    collection (every 700 allocations, scanning the young generation and, now
    and then, everything) took about half the CPU time of a 3,000-episode run.
    Objects alive before the run (corpus, templates, models) are frozen out of
    the scans. The previous settings come back when the run ends. A process-wide
    setting, so the command that owns the process applies it, not the library.
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prose-sim",
        description="Simulate learning users' writing preferences from their writing samples.",
    )
    parser.add_argument("--version", action="version", version=f"prose_sim {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a scenario", description="Run a scenario file.")
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
    run.add_argument("--out", type=Path, help="run folder (default: runs/<name>-<timestamp>)")
    run.add_argument("--concurrency", type=int, help="episodes in flight at once (default: all)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set seeds=[1,2] --set models.user.latency_s=0.1",
    )
    run.add_argument(
        "--progress",
        choices=["auto", "bar", "log", "off"],
        default="auto",
        help="progress display (auto: a bar on a terminal, log lines otherwise)",
    )
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

    merge = commands.add_parser(
        "merge",
        help="join the run folders of a sharded grid into one",
        description="Join the run folders of `run --shard K/N` (same scenario, every K once, finished) "
        "into one run folder that `report` and `replay` accept.",
    )
    merge.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    merge.add_argument("--out", type=Path, required=True, help="the merged run folder")
    merge.set_defaults(handler=_cmd_merge)

    replay = commands.add_parser(
        "replay",
        help="re-run a recorded run from its log, calling no model, and check it reproduces",
        description="Re-run a finished run with every model answer taken from its event log; "
        "exit 0 when results.csv is reproduced byte for byte, 1 (naming the first diverging "
        "event) when not.",
    )
    replay.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    replay.add_argument(
        "--out", type=Path, help="folder for the replayed run (default: RUN_DIR/replay)"
    )
    replay.add_argument(
        "--report-only",
        action="store_true",
        help="do not re-run: rebuild results.csv and the report files in RUN_DIR from its log",
    )
    replay.add_argument("--progress", choices=["auto", "bar", "log", "off"], default="auto")
    replay.set_defaults(handler=_cmd_replay)

    bench = commands.add_parser(
        "bench",
        help="throughput and cost benchmarks (overhead, ratelimits, variants, local)",
        description="Run a benchmark suite: each measures side by side in one run, prints a table "
        "and writes bench_<suite>.json and .md under --out (default benchmarks/results).",
    )
    bench.add_argument("suite", choices=[*BENCH_SUITES, "all"])
    bench.add_argument(
        "--quick", action="store_true", help="smaller sizes (a smoke test; not for the record)"
    )
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    bench.set_defaults(handler=_cmd_bench)

    report = commands.add_parser(
        "report",
        help="tables, judge Q&A and plots from recorded runs",
        description="Build the paper-style report from one or more run folders' event logs: "
        "Markdown on stdout; report.md, report.csv, judge_qa.csv and PNG plots in the output folder.",
    )
    report.add_argument(
        "runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders to combine"
    )
    report.add_argument(
        "--out", type=Path, help="output folder (default: the run folder, when there is one)"
    )
    report.set_defaults(handler=_cmd_report)

    personas = commands.add_parser("personas", help="the simulated users")
    persona_cmds = personas.add_subparsers(dest="personas_command", metavar="ACTION", required=True)
    p_list = persona_cmds.add_parser(
        "list", help="list the personas: built-in, installed plugins', and --file ones"
    )
    p_list.add_argument(
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="also a persona TOML file or folder (repeatable)",
    )
    p_list.add_argument("--task", help="only this task's")
    p_list.set_defaults(handler=_cmd_personas_list)
    p_show = persona_cmds.add_parser("show", help="show one persona's preferences")
    p_show.add_argument("name", help="persona name, e.g. cnn_dailymail")
    p_show.add_argument("--task", help="summarization or email_writing")
    p_show.add_argument("--framework", help="plume or prelude")
    p_show.add_argument(
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="also a persona TOML file or folder (repeatable)",
    )
    p_show.set_defaults(handler=_cmd_personas_show)
    p_gen = persona_cmds.add_parser(
        "generate",
        help="compose a population of distinct personas from per-task component pools",
        description="Write N distinct personas (1 to K components each, at most one per category) "
        "as a TOML file a scenario can name in persona_files.",
    )
    p_gen.add_argument("--task", required=True, choices=["summarization", "email_writing"])
    p_gen.add_argument("--n", type=int, required=True, help="how many personas")
    p_gen.add_argument(
        "--components", type=int, default=4, help="at most this many components each (1-4)"
    )
    p_gen.add_argument("--seed", type=int, default=0)
    p_gen.add_argument("--framework", default="plume", choices=["plume", "prelude"])
    p_gen.add_argument("--out", type=Path, help="TOML file to write (default: stdout)")
    p_gen.set_defaults(handler=_cmd_personas_generate)

    methods = commands.add_parser("methods", help="the inference methods")
    method_cmds = methods.add_subparsers(dest="methods_command", metavar="ACTION", required=True)
    m_list = method_cmds.add_parser(
        "list", help="list the methods: built-in and installed plugins', with their knobs"
    )
    m_list.set_defaults(handler=_cmd_methods_list)

    prompts = commands.add_parser("prompts", help="inspect the prompts and answers of an episode")
    prompt_cmds = prompts.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    pr_show = prompt_cmds.add_parser(
        "show",
        help="print every prompt and answer of one episode",
        description="From a finished run (--run, --episode) or from a fresh scripted episode of a method (--method).",
    )
    source = pr_show.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a run folder")
    source.add_argument(
        "--method", help="run one scripted episode of this method (e.g. prose, cipherN, icl)"
    )
    pr_show.add_argument("--episode", help="episode id in the run (default: list them)")
    pr_show.add_argument("--variant", help="PROSE variant for --method prose")
    pr_show.add_argument(
        "--task", default="summarization", choices=["summarization", "email_writing"]
    )
    pr_show.add_argument("--framework", default="plume", choices=["plume", "prelude"])
    pr_show.add_argument("--persona", help="simulated user (default: the task's first)")
    pr_show.add_argument("--demonstrations", type=int, default=2, help="task instances (default 2)")
    pr_show.set_defaults(handler=_cmd_prompts_show)

    _add_view_and_export(commands)

    corpus = commands.add_parser("corpus", help="the bundled documents")
    corpus_cmds = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    c_list = corpus_cmds.add_parser("list", help="documents per source, with word-length ranges")
    c_list.set_defaults(handler=_cmd_corpus_list)
    c_show = corpus_cmds.add_parser("show", help="list a source's documents, or print one")
    c_show.add_argument("source")
    c_show.add_argument("id", nargs="?", help="document id (default: list the source's ids)")
    c_show.set_defaults(handler=_cmd_corpus_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging()
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunIOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except _Signalled as exc:
        print(f"{exc.name}: stopped before the run began", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # a file that could not be written (a full disk) or read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_RUN_FAILED


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (it may be swapped, e.g. by tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _console() -> Console:
    """Rich console; wide enough for the tables when output is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 160)


# --- run ----------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from prose_sim.runtime.backends import check_credentials
    from prose_sim.runtime.runner import default_run_dir, execute
    from prose_sim.scenario import load_run

    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    prior = None
    if args.resume is not None:
        from prose_sim.runtime.resume import load_prior

        if args.out is not None and args.out != args.resume:
            raise UsageError("--resume continues in the run's own folder; leave out --out")
        prior = load_prior(args.resume, args.scenario, args.overrides)
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
                    run,
                    run_dir,
                    concurrency=args.concurrency,
                    progress=args.progress,
                    use_cache=args.use_cache,
                    prior=prior,
                    shard=shard,
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
    if outcome.stop == "signal":
        return _say_interrupted(outcome)
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

        say = _console()
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


class _Signalled(BaseException):
    """SIGTERM or SIGHUP before the run's own handling began (e.g. while models load)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name


def _signals_before_the_run() -> None:
    """SIGTERM and SIGHUP end the command cleanly until the run watches them itself."""

    def raise_signalled(signum, frame):
        raise _Signalled(signum)

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


# the run's closing table: headline metrics only (report.md has them all)
HEADLINE_METRICS = ("ppcm", "fpm", "bertscore", "preference_accuracy", "levenshtein_norm")


def _shown(text: str) -> str:
    """Text from a run (a label, a path) as the console shows it: no control characters,
    no console markup."""
    return escape(terminal_text(text))


def _print_summary(outcome) -> None:
    console = _console()
    shown = [n for n in HEADLINE_METRICS if outcome.methods and n in outcome.methods[0].metrics]
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
    console.print(f"results: {outcome.run_dir}/results.csv  log: {outcome.run_dir}/events.jsonl")
    if outcome.notice:
        console.print(f"[bold red]{outcome.notice}[/]", highlight=False)


# --- merge --------------------------------------------------------------------


def _cmd_merge(args: argparse.Namespace) -> int:
    from prose_sim.runtime.merge import merge_runs

    collector = merge_runs(args.runs, args.out)
    rows = collector.rows()
    print(
        f"merged {len(args.runs)} shards: {len(collector.episodes_finished)} episodes, {len(rows)} task instances into {args.out}"
    )
    print(f"report: python -m prose_sim report {args.out}")
    return EXIT_OK


# --- replay -------------------------------------------------------------------


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.report_only:
        from prose_sim.eventlog import read_events
        from prose_sim.report.build import Report
        from prose_sim.results.collector import ResultsCollector

        collector = ResultsCollector().observe_all(read_events(args.run_dir / "events.jsonl"))
        (args.run_dir / "results.csv").write_text(collector.results_csv(), encoding="utf-8")
        written = Report([args.run_dir]).write(args.run_dir)
        print(f"rebuilt results.csv, {', '.join(p.name for p in written)} in {args.run_dir}")
        return EXIT_OK
    from prose_sim.runtime.replay import replay_run

    out = args.out or args.run_dir / "replay"
    with relaxed_gc():
        result = anyio.run(lambda: replay_run(args.run_dir, out, progress=args.progress))
    run = result.run
    print(
        f"replayed {run.instances} task instances of {run.episodes} episodes from the log: "
        f"{run.answers_from_log:,} answers served, {result.unrecorded_calls} requests not in the log"
    )
    if result.identical:
        print(f"identical: {out}/results.csv equals {args.run_dir}/results.csv byte for byte")
        return EXIT_OK
    print(f"DIVERGED: {result.divergence}", file=sys.stderr)
    return EXIT_RUN_FAILED


# --- bench --------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    suites = BENCH_SUITES if args.suite == "all" else (args.suite,)
    for suite in suites:
        module = importlib.import_module(f"prose_sim.bench.{suite}")
        print(f"bench {suite}: running ...", file=sys.stderr)
        # the suites that run scenarios do so under a run's GC setting; local drives a model
        gc_policy: contextlib.AbstractContextManager[None] = (
            relaxed_gc() if suite != "local" else contextlib.nullcontext()
        )
        with gc_policy:
            result = module.run(quick=args.quick)
        json_path, md_path = result.write(args.out)
        if suite == "overhead":  # the headline figures' history, which RESULTS.md shows
            module.record_history(result, args.out)
        sys.stdout.write(result.markdown() + "\n")
        print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    from prose_sim.bench.common import write_results_index

    index = write_results_index(args.out, args.out.parent / "RESULTS.md")
    print(f"updated {index}", file=sys.stderr)
    return EXIT_OK


# --- report -------------------------------------------------------------------


def _cmd_report(args: argparse.Namespace) -> int:
    from prose_sim.report.build import Report

    if args.out is None and len(args.runs) > 1:
        raise UsageError("several runs: say where the combined report goes with --out DIR")
    report = Report(args.runs)
    sys.stdout.write(report.markdown())
    out = args.out or args.runs[0]
    written = report.write(out)
    print(f"wrote {', '.join(p.name for p in written)} to {out}", file=sys.stderr)
    return EXIT_OK


# --- prompts ------------------------------------------------------------------


def _cmd_prompts_show(args: argparse.Namespace) -> int:
    import tempfile

    from prose_sim.eventlog import read_events
    from prose_sim.report.transcript import episode_ids, transcript

    if args.run is not None:
        log = args.run / "events.jsonl"
        ids = episode_ids(read_events(log))
        if args.episode is None:
            print("episodes in this run (pass one with --episode):")
            print("\n".join(f"  {terminal_text(i)}" for i in ids))
            return EXIT_OK
        if args.episode not in ids:
            raise UsageError(
                f"{log}: no episode {args.episode!r} (run without --episode to list them)"
            )
        for line in transcript(read_events(log), args.episode):
            print(
                terminal_text(line)
            )  # answers are untrusted: no escape sequence reaches the terminal
        return EXIT_OK
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import run_from_dict

    method: dict[str, object] = {"method": args.method}
    if args.variant:
        method["variant"] = args.variant
    task: dict[str, object] = {"framework": args.framework}
    if args.persona:
        task["personas"] = [args.persona]
    raw = {
        "name": "prompts",
        "demonstrations_per_user": args.demonstrations,
        "tasks": {args.task: task},
        "methods": {"shown": method},
        "metrics": {"bertscore": ""},  # scripted word salad: no model metric, no extra needed
    }
    run = run_from_dict(raw, "prompts show")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        with relaxed_gc():
            anyio.run(lambda: execute(run, run_dir, progress="off"))
        events = list(read_events(run_dir / "events.jsonl"))
    print("(scripted backend: the answers are word salad in the right format)")
    for line in transcript(events, episode_ids(events)[0]):
        print(terminal_text(line))
    return EXIT_OK


# --- view and export (issue 19) ---------------------------------------------------


def _add_view_and_export(commands) -> None:
    view = commands.add_parser(
        "view",
        help="write a run's browsable HTML viewer (one self-contained file)",
        description="Write one HTML file (no network needed) to browse a run: summary, tables and plots, "
        "episodes with filters and search, drafts against the user's text, preferences, every model call.",
    )
    view.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    view.add_argument("--out", type=Path, metavar="FILE.html", help="default: RUN_DIR/view.html")
    view.add_argument("--open", action="store_true", help="open it in the default browser")
    view.set_defaults(handler=_cmd_view)

    export = commands.add_parser("export", help="log a finished run to an experiment tracker")
    trackers = export.add_subparsers(dest="tracker", metavar="TRACKER", required=True)
    wandb = trackers.add_parser(
        "wandb",
        help="Weights & Biases (offline by default: no account needed; `wandb sync` later)",
        description="Log a finished run to Weights & Biases: the scenario as config, one row per task "
        "instance as a table, the report tables and the plots. Offline by default (pip install "
        "'prose-sim[wandb]'); sync with `wandb sync DIR/wandb/offline-run-*`.",
    )
    wandb.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    wandb.add_argument("--project", default="prose-sim")
    wandb.add_argument("--dir", type=Path, help="where wandb writes its files (default: RUN_DIR)")
    wandb.add_argument(
        "--online", action="store_true", help="log straight to the server (needs a login)"
    )
    wandb.set_defaults(handler=_cmd_export_wandb)


def _cmd_view(args: argparse.Namespace) -> int:
    import time

    from prose_sim.view.render import write_view

    started = time.perf_counter()
    out = write_view(args.run_dir, args.out)
    size = out.stat().st_size
    print(
        f"wrote {out} ({size / 1e6:,.1f} MB in {time.perf_counter() - started:.1f} s); open it in any browser"
    )
    if args.open:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())
    return EXIT_OK


def _cmd_export_wandb(args: argparse.Namespace) -> int:
    from prose_sim.export.wandb import export_run

    result = export_run(args.run_dir, project=args.project, directory=args.dir, online=args.online)
    print(result.message)
    return EXIT_OK


# --- methods and personas -------------------------------------------------------


def _cmd_methods_list(args: argparse.Namespace) -> int:
    from prose_sim.actors.inferrers import method_origins

    table = Table(title="methods")
    for column in ["name", "from", "knobs"]:
        table.add_column(column, overflow="fold")
    for name, origin, cls in method_origins():
        table.add_row(name, origin, ", ".join(sorted(cls.allowed_knobs())) or "-")
    _console().print(table)
    return EXIT_OK


def _catalog(files: list[Path]):
    from prose_sim.world.personas import catalog_with

    return catalog_with(tuple(str(f.resolve()) for f in files))


def _cmd_personas_list(args: argparse.Namespace) -> int:
    catalog = _catalog(args.file)
    table = Table(title="personas")
    for column in ["framework", "task", "name", "documents", "preferences", "from"]:
        table.add_column(column, overflow="fold")
    for p in catalog:
        if args.task is None or p.task == args.task:
            documents = p.source or f"{len(p.documents)} of its own"
            table.add_row(p.framework, p.task, p.name, documents, p.preferences, catalog.origin(p))
    _console().print(table)
    return EXIT_OK


def _cmd_personas_show(args: argparse.Namespace) -> int:
    catalog = _catalog(args.file)
    found = [
        p
        for p in catalog
        if p.name == args.name
        and (args.task is None or p.task == args.task)
        and (args.framework is None or p.framework == args.framework)
    ]
    if not found:
        raise UsageError(f"no persona named {args.name!r} (see `prose-sim personas list`)")
    for p in found:
        documents = p.source or f"{len(p.documents)} of its own"
        print(
            f"{p.framework} / {p.task} / {p.name}  (documents: {documents}; from {catalog.origin(p)})"
        )
        for component in p.components:
            print(f"  - {component}")
        b = p.behaviour
        if b.template or b.edit is not None or b.ignore_probability:
            print(
                f"  behaviour: template={b.template or 'default'} edit={b.edit} "
                f"ignore_probability={b.ignore_probability}"
            )
    return EXIT_OK


def _cmd_personas_generate(args: argparse.Namespace) -> int:
    from prose_sim.world.generate import generate_personas, to_toml

    personas = generate_personas(
        args.task, args.n, args.components, args.seed, framework=args.framework
    )
    text = to_toml(personas, components=args.components, seed=args.seed)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(
            f'wrote {len(personas)} personas to {args.out} (use it with persona_files = ["{args.out}"])',
            file=sys.stderr,
        )
    return EXIT_OK


# --- corpus ---------------------------------------------------------------------


def _cmd_corpus_list(args: argparse.Namespace) -> int:
    from prose_sim.world.corpus import SOURCES, bundled_corpus

    corpus = bundled_corpus()
    table = Table(title="bundled corpus")
    for column in ["source", "genre", "documents", "words (min-max)", "paper's dataset"]:
        table.add_column(column, overflow="fold")
    for name in corpus.sources():
        docs = corpus.documents(name)
        words = [d.words for d in docs]
        info = SOURCES.get(name)
        table.add_row(
            name,
            info.genre if info else "",
            str(len(docs)),
            f"{min(words)}-{max(words)}",
            info.hf_dataset if info else "",
        )
    _console().print(table)
    return EXIT_OK


def _cmd_corpus_show(args: argparse.Namespace) -> int:
    from prose_sim.world.corpus import bundled_corpus

    corpus = bundled_corpus()
    if args.source not in corpus.sources():
        raise UsageError(f"unknown source {args.source!r} (known: {', '.join(corpus.sources())})")
    if args.id is None:
        for doc in corpus.documents(args.source):
            first = doc.text.strip().splitlines()[0]
            print(f"{doc.id}\t{doc.words} words\t{first[:70]}")
        return EXIT_OK
    doc = corpus.get(args.source, args.id)
    print(f"# {doc.id} ({doc.source}, {doc.words} words)\n")
    print(doc.text)
    return EXIT_OK
