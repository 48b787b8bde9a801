"""A finished (or interrupted) run, for a notebook: ``prose_sim.open_run(path)``.

Everything is read through the run folder's one reader (``prose_sim.runfolder.RunFolder``):
the resolved scenario, ``results.csv``, ``summary.json`` and the event log, whose events
come back as the typed Structs of ``prose_sim.events``. Nothing is written.

    run = prose_sim.open_run("runs/methods")
    run.results  # a pandas DataFrame when pandas is installed, else a list of dicts
    for verdict in run.events(JudgeVerdict): ...
"""

from __future__ import annotations

import copy
import csv
import importlib
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from prose_sim.config import Scenario
from prose_sim.errors import UsageError
from prose_sim.events import Event
from prose_sim.runfolder import RunFolder
from prose_sim.scenario.loading import drop_other_backends_defaults, parse_scenario

E = TypeVar("E", bound=Event)

Cell = str | int | float


class OpenRun:
    """One run folder, read on demand (each property reads its file when asked)."""

    def __init__(self, path: str | Path):
        self.folder = RunFolder(path)
        if not self.folder.path.is_dir():
            raise UsageError(f"{self.folder.path}: no such run folder")
        if not self.folder.log_path.is_file() and not self.folder.scenario_path.is_file():
            raise UsageError(
                f"{self.folder.path}: not a prose_sim run folder (no events.jsonl, no scenario.toml)"
            )

    def __repr__(self) -> str:
        return f"OpenRun({str(self.folder.path)!r})"

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def scenario_tables(self) -> dict[str, Any]:
        """The resolved scenario as the run recorded it (its log's, else ``scenario.toml``)."""
        return self.folder.resolved_scenario()

    @property
    def scenario(self) -> Scenario:
        """The resolved scenario as a ``prose_sim.config.Scenario`` (checked, with each
        method's and role's own settings Struct; the world is not loaded)."""
        tables = copy.deepcopy(self.scenario_tables)
        drop_other_backends_defaults(tables)
        return parse_scenario(tables, str(self.folder.scenario_path))

    @property
    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` (None when the run wrote none: it was interrupted)."""
        return self.folder.summary()

    @property
    def results(self) -> Any:
        """``results.csv``, one row per task instance: a pandas DataFrame when pandas is
        installed, else ``result_rows()``."""
        try:  # an optional library, found at run time (no dependency, no stubs needed)
            pandas = importlib.import_module("pandas")
        except ImportError:
            return self.result_rows()
        return pandas.read_csv(
            io.BytesIO(self.folder.results()), keep_default_na=False, na_values=[""]
        )

    def result_rows(self) -> list[dict[str, Cell]]:
        """``results.csv`` as a list of dicts: a column whose cells are all numbers holds
        ints (every cell an integer) or floats (an empty cell is NaN); the others hold text."""
        text = self.folder.results().decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            return []
        kinds = {column: _kind([r[column] for r in rows]) for column in rows[0]}
        return [{k: _typed(v, kinds[k]) for k, v in row.items()} for row in rows]

    def events(self, *kinds: type[E]) -> Iterator[E]:
        """The log's events in order, as ``prose_sim.events`` Structs; with ``kinds``, only
        the events of those types (``run.events(JudgeVerdict)``)."""
        for event in self.folder.events():
            if not kinds or isinstance(event, kinds):
                yield event  # type: ignore[misc]


def open_run(path: str | Path) -> OpenRun:
    """A run folder, for reading: its scenario, results, summary and events."""
    return OpenRun(path)


def _kind(cells: list[str]) -> type:
    """int, float or str: the type every non-empty cell of a column reads as."""
    filled = [c for c in cells if c != ""]
    if not filled:
        return str
    try:
        for c in filled:
            float(c)
    except ValueError:
        return str
    if len(filled) == len(cells) and all(_is_int(c) for c in filled):
        return int
    return float


def _is_int(cell: str) -> bool:
    try:
        int(cell)
    except ValueError:
        return False
    return True


def _typed(cell: str, kind: type) -> Cell:
    if kind is str:
        return cell
    if cell == "":
        return math.nan
    return int(cell) if kind is int else float(cell)
