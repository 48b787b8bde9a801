"""``merge``, ``replay`` and ``rescore``: join a sharded grid's run folders; re-run a run from
its log; judge and measure it again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from prose_sim.cli.common import EXIT_OK, EXIT_RUN_FAILED, add_overrides, add_progress
from prose_sim.gc_policy import relaxed_gc


def add_merge(commands) -> None:
    merge = commands.add_parser(
        "merge",
        help="join the run folders of a sharded grid into one",
        description="Join the run folders of `run --shard K/N` (same scenario, every K once, finished) "
        "into one run folder that `report` and `replay` accept.",
    )
    merge.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    merge.add_argument("--out", type=Path, required=True, help="the merged run folder")
    merge.set_defaults(handler=_cmd_merge)


def add_replay(commands) -> None:
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
    add_progress(replay)
    replay.set_defaults(handler=_cmd_replay)


def add_rescore(commands) -> None:
    rescore = commands.add_parser(
        "rescore",
        help="judge and measure a finished run again, its simulation served from its log",
        description="Write a new run folder in which every user, writer and agent answer comes "
        "from RUN_DIR's log and only the judge and the metrics run again, with the [metrics], "
        "[models.judge] and judge-prompt settings given with --set (or the recorded ones). Only "
        "the judge's model is called. A setting that would change the simulation is refused. "
        "Exit 0 when done with the simulation reproduced, 1 when it was not (naming where) or "
        "task instances failed, 2 on bad input.",
    )
    rescore.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rescore.add_argument("--out", type=Path, required=True, help="the new run folder")
    add_overrides(
        rescore,
        "change a judge or metrics setting, e.g. --set models.judge.model=gpt-4o "
        "--set metrics.bertscore= --set prompts.dir=my_judge_prompts",
    )
    add_progress(rescore)
    rescore.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="do not answer the judge's API requests from the response cache",
    )
    rescore.add_argument(
        "--no-report", dest="write_report", action="store_false", help="skip the report files"
    )
    rescore.set_defaults(handler=_cmd_rescore)


def _cmd_merge(args: argparse.Namespace) -> int:
    from prose_sim.runtime.merge import merge_runs

    collector = merge_runs(args.runs, args.out)
    rows = collector.rows()
    print(
        f"merged {len(args.runs)} shards: {len(collector.episodes_finished)} episodes, {len(rows)} task instances into {args.out}"
    )
    print(f"report: python -m prose_sim report {args.out}")
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.report_only:
        from prose_sim.report.build import Report
        from prose_sim.results.collector import ResultsCollector
        from prose_sim.runfolder import RunFolder

        folder = RunFolder(args.run_dir)
        collector = ResultsCollector().observe_all(folder.events())
        folder.write_results(collector.results_csv().encode())
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


def _cmd_rescore(args: argparse.Namespace) -> int:
    from prose_sim.runtime.rescore import rescore_run

    with relaxed_gc():
        result = anyio.run(
            lambda: rescore_run(
                args.run_dir,
                args.out,
                args.overrides,
                progress=args.progress,
                use_cache=args.use_cache,
            )
        )
    run = result.run
    changed = "; ".join(result.changes) if result.changes else "nothing (the recorded settings)"
    print(f"rescored {run.instances} task instances of {run.episodes} episodes; changed: {changed}")
    print(
        f"model calls: {result.judge_calls:,} by the judge; {result.answers_from_log:,} user, "
        f"writer and agent answers served from the log; {result.unrecorded_calls} requests "
        f"not in the log"
    )
    if run.stop:
        print(f"error: {run.stop_reason}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if args.write_report:
        from prose_sim.report.build import Report

        Report([args.out]).write(args.out)
    print(
        f"results: {args.out}/results.csv"
        + (f"  report: {args.out}/report.md" if args.write_report else "")
    )
    if run.notice:
        print(run.notice)
    if not result.faithful:
        print(f"DIVERGED: {result.difference}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if run.instances_failed:
        print(
            f"error: {run.instances_failed} of {run.instances} task instances failed; "
            f"see {args.out}/events.jsonl",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED
    return EXIT_OK
