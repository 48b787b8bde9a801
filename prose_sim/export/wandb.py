"""``export wandb``: a finished run, logged to Weights & Biases.

What is logged: the resolved scenario as the run's config; one row per task
instance (results.csv) as the ``instances`` table; the report's tables
(report.csv) as the ``report`` table; the plots as images; the run's totals
(summary.json) in the run summary. Offline by default, so no account or network
is needed: wandb writes the run under ``DIR/wandb/offline-run-*`` and
``wandb sync`` uploads it later. wandb is an optional extra
(``pip install 'prose-sim[wandb]'``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Literal

import msgspec

from prose_sim.errors import UsageError
from prose_sim.extras import missing_extra
from prose_sim.report.plots import PLOTS
from prose_sim.runfolder import RunFolder

# summary.json's totals copied into the wandb run summary
SUMMARY_KEYS = (
    "status",
    "episodes",
    "episodes_completed",
    "episodes_failed",
    "instances",
    "instances_failed",
    "model_calls",
    "model_failures",
    "input_tokens",
    "output_tokens",
    "cached_calls",
    "cost_usd",
    "wall_s",
    "model_calls_per_s",
)


class ExportResult(msgspec.Struct, kw_only=True):
    run_dir: str
    offline: bool
    wandb_dir: str  # the run's folder that wandb wrote (offline: what `wandb sync` takes)
    instances: int
    plots: int
    message: str


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; export needs a finished run ({what})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc}") from None


def _cell(value: str) -> object:
    """A CSV cell as a number where it is one (wandb tables keep the types)."""
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return (
        int(number)
        if number.is_integer() and "." not in value and "e" not in value.lower()
        else number
    )


def _table_rows(text: str) -> tuple[list[str | int], list[list[object]]]:
    """A CSV's header and rows (wandb's tables take str or int column names)."""
    reader = csv.reader(io.StringIO(text))
    header: list[str | int] = list(next(reader, []))
    return header, [[_cell(v) for v in row] for row in reader]


def export_run(
    run_dir: Path, project: str = "prose-sim", directory: Path | None = None, online: bool = False
) -> ExportResult:
    folder = RunFolder(run_dir)
    if not folder.log_path.is_file():
        raise UsageError(f"{run_dir}: not a run folder (no events.jsonl)")
    config = folder.resolved_scenario()
    try:
        summary = json.loads(_read(folder.summary_path, "written when a run ends"))
    except ValueError as exc:
        raise UsageError(f"{folder.summary_path}: not JSON: {exc}") from None
    columns, rows = _table_rows(_read(folder.results_path, "written when a run ends"))
    report_path = run_dir / "report.csv"
    if not report_path.exists():  # a run made with --no-report: build the report now
        from prose_sim.report.build import Report

        Report([run_dir]).write(run_dir)
    report_columns, report_rows = _table_rows(_read(report_path, "the report"))
    try:
        import wandb
    except ImportError:
        raise missing_extra("export wandb (the wandb package)", "wandb") from None

    directory = directory or run_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create it: {exc}") from None
    mode: Literal["online", "offline"] = "online" if online else "offline"
    settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True)
    previous_mode = os.environ.pop(
        "WANDB_MODE", None
    )  # --online / the default decide, not the shell
    try:
        run = wandb.init(
            project=project,
            name=run_dir.name,
            dir=str(directory),
            mode=mode,
            config=config,
            job_type="prose_sim-run",
            settings=settings,
        )
        logged: dict[str, object] = {
            "instances": wandb.Table(columns=columns, data=rows),
            "report": wandb.Table(columns=report_columns, data=report_rows),
        }
        plots = [name for name in PLOTS if (run_dir / name).exists()]
        for name in plots:
            logged[f"plots/{name.removesuffix('.png')}"] = wandb.Image(str(run_dir / name))
        run.log(logged)
        run.summary.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
        sync_dir = str(run.settings.sync_dir)
        run.finish()
        wandb.teardown()  # waits for wandb's service to write the run's last records
    finally:
        if previous_mode is not None:
            os.environ["WANDB_MODE"] = previous_mode
    where = (
        f"offline at {sync_dir}; upload it with: wandb sync {sync_dir}"
        if not online
        else f"to {project} ({sync_dir})"
    )
    return ExportResult(
        run_dir=str(run_dir),
        offline=not online,
        wandb_dir=sync_dir,
        instances=len(rows),
        plots=len(plots),
        message=f"logged {run_dir.name} ({len(rows)} task instances, {len(report_rows)} report rows, "
        f"{len(plots)} plots) to wandb {where}",
    )
