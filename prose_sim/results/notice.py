"""The smoke-test notice: a run whose models are too small to mean anything says so.

When any role runs on the scripted backend (a deterministic test double that
answers word salad in the right format) or on the embedded SmolLM2-135M model
(too small to follow these prompts), the console summary, ``summary.json``,
``report.md``, every plot title and the viewer carry one line saying the
numbers are a smoke test, not research results.

``models_notice`` is the one place that decides it; the others only say where
the models come from (a loaded scenario, or a run folder's ``scenario.toml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from prose_sim.config import Models
from prose_sim.errors import UsageError
from prose_sim.models.protocol import ROLES
from prose_sim.runfolder import RunFolder

EMBEDDED = "smollm2-135m-instruct"
# what the notice reads of a role's spec
_NOTICE_KEYS = ("backend", "model", "constrained")


def models_notice(models: Models) -> str:
    """The notice of a scenario's models ("" when every role runs on a real model), naming
    the roles on the scripted or the embedded model, and the roles whose verdicts and lists
    were kept to their shape (the writer's drafts have no shape to keep)."""
    specs = {role: models.of(role) for role in ROLES}
    scripted = [r for r in ROLES if specs[r].backend == "scripted"]
    embedded = [
        r for r in ROLES if specs[r].backend == "local" and specs[r].model in ("", EMBEDDED)
    ]
    parts = []
    if scripted:
        parts.append(f"{', '.join(scripted)} on the scripted test double")
    if embedded:
        parts.append(f"{', '.join(embedded)} on the embedded SmolLM2-135M")
    if not parts:
        return ""
    constrained = [r for r in ROLES if r != "writer" and specs[r].constrained]
    if constrained:
        parts.append(f"{', '.join(constrained)} answers constrained to their format")
    return f"smoke test: {'; '.join(parts)}; not research results"


def smoke_notice(scenario: Any) -> str:
    """The notice of a loaded ``Scenario``."""
    return models_notice(scenario.models)


def table_notice(table: object) -> str:
    """The notice of a scenario's ``[models]`` table as TOML gives it (a run folder's
    resolved ``scenario.toml``): read as the scenario's ``Models``, with its defaults (an
    unset writer is the user's model; no table at all, every role's defaults). "" when a
    role's backend, model or constrained cannot be read."""
    if not isinstance(table, dict):  # no [models] table: every role on the defaults
        table = {}
    wanted = {
        role: {k: v for k, v in spec.items() if k in _NOTICE_KEYS}
        for role, spec in table.items()
        if role in ROLES and isinstance(spec, dict)
    }
    try:
        return models_notice(msgspec.convert(wanted, Models))
    except msgspec.ValidationError:
        return ""


def run_dir_notice(run_dir: Path) -> str:
    """The notice of a run folder, from its resolved scenario (its log's, else its
    ``scenario.toml``; "" without a readable one)."""
    try:
        raw = RunFolder(run_dir).resolved_scenario()
    except UsageError:
        return ""
    return table_notice(raw.get("models"))
