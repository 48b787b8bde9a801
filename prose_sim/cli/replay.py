"""``merge`` and ``replay``: join a sharded grid's run folders; re-run a run from its log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from prose_sim.cli.common import EXIT_OK, EXIT_RUN_FAILED
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
    replay.add_argument("--progress", choices=["auto", "bar", "log", "off"], default="auto")
    replay.set_defaults(handler=_cmd_replay)


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
