"""Progress of a run: a live bar on a terminal, structlog lines otherwise.

Both read the results collector's counters on a timer, so showing progress
costs nothing per event.
"""

from __future__ import annotations

import sys
import time

import anyio
import structlog
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prose_sim.report.results import ResultsCollector

log = structlog.get_logger("prose_sim")


def _counts(collector: ResultsCollector) -> tuple[int, int, int, int]:
    calls = tokens = 0
    for usage in collector.usage_by_role_purpose.values():
        calls += usage.calls
        tokens += usage.input_tokens + usage.output_tokens
    return len(collector.episodes_finished), collector.instances_finished, calls, tokens


async def show_progress(
    collector: ResultsCollector, episodes: int, mode: str = "auto", interval_s: float | None = None
) -> None:
    """Run until cancelled. mode: auto (bar on a terminal), bar, log, or off."""
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    if mode == "off":
        await anyio.sleep_forever()
    if mode == "bar":
        await _bar(collector, episodes, interval_s or 0.2)
    else:
        await _lines(collector, episodes, interval_s or 5.0)


async def _bar(collector: ResultsCollector, episodes: int, interval_s: float) -> None:
    columns = (
        TextColumn("episodes"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("run", total=episodes, detail="")
        try:
            while True:
                done, instances, calls, tokens = _counts(collector)
                detail = f"instances {instances:,}  model calls {calls:,}  tokens {tokens:,}"
                bar.update(task, completed=done, detail=detail)
                await anyio.sleep(interval_s)
        finally:
            done, instances, calls, tokens = _counts(collector)
            detail = f"instances {instances:,}  model calls {calls:,}  tokens {tokens:,}"
            bar.update(task, completed=done, detail=detail)


async def _lines(collector: ResultsCollector, episodes: int, interval_s: float) -> None:
    started = time.monotonic()
    while True:
        await anyio.sleep(interval_s)
        done, instances, calls, tokens = _counts(collector)
        log.info(
            "progress",
            episodes=f"{done}/{episodes}",
            instances=instances,
            model_calls=calls,
            tokens=tokens,
            elapsed_s=round(time.monotonic() - started, 1),
        )
