"""What a run wrote, read back: ``report``, ``prompts show``, ``view`` and ``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from prose_sim.cli.common import EXIT_OK
from prose_sim.errors import UsageError
from prose_sim.gc_policy import relaxed_gc
from prose_sim.untrusted import terminal_text


def add_report(commands) -> None:
    report = commands.add_parser(
        "report",
        help="tables, judge Q&A and plots from recorded runs",
        description="Build the paper-style report from one or more run folders' event logs: "
        "Markdown on stdout; report.md, report.csv, report_paired.csv, judge_qa.csv and PNG plots "
        "in the output folder. Several runs of the same grid (say, two agent models) are paired "
        "instance by instance, their methods labelled RUN/method.",
    )
    report.add_argument(
        "runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders to combine"
    )
    report.add_argument(
        "--out", type=Path, help="output folder (default: the run folder, when there is one)"
    )
    report.add_argument(
        "--baseline",
        metavar="LABEL",
        help="compare every method with this one in the paired comparisons (a method label; "
        "RUN/method for several runs; default: the scenario's [report] baseline, else every pair)",
    )
    report.set_defaults(handler=_cmd_report)


def add_prompts(commands) -> None:
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


def add_view_and_export(commands) -> None:
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


def _cmd_report(args: argparse.Namespace) -> int:
    from prose_sim.report.build import Report

    if args.out is None and len(args.runs) > 1:
        raise UsageError("several runs: say where the combined report goes with --out DIR")
    report = Report(args.runs, baseline=args.baseline)
    sys.stdout.write(report.markdown())
    out = args.out or args.runs[0]
    written = report.write(out)
    print(f"wrote {', '.join(p.name for p in written)} to {out}", file=sys.stderr)
    return EXIT_OK


def _cmd_prompts_show(args: argparse.Namespace) -> int:
    import tempfile

    from prose_sim.report.transcript import episode_ids, transcript
    from prose_sim.runfolder import RunFolder

    if args.run is not None:
        folder = RunFolder(args.run)
        log = folder.log_path
        ids = episode_ids(folder.events())
        if args.episode is None:
            print("episodes in this run (pass one with --episode):")
            print("\n".join(f"  {terminal_text(i)}" for i in ids))
            return EXIT_OK
        if args.episode not in ids:
            raise UsageError(
                f"{log}: no episode {args.episode!r} (run without --episode to list them)"
            )
        for line in transcript(folder.events(), args.episode):
            print(
                terminal_text(line)
            )  # answers are untrusted: no escape sequence reaches the terminal
        return EXIT_OK
    from prose_sim.config import RunOptions
    from prose_sim.runtime.prepare import prepare
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
            anyio.run(lambda: execute(prepare(run, run_dir, RunOptions(progress="off"))))
        events = list(RunFolder(run_dir).events())
    print("(scripted backend: the answers are word salad in the right format)")
    for line in transcript(events, episode_ids(events)[0]):
        print(terminal_text(line))
    return EXIT_OK


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
