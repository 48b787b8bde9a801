"""The smoke-test notice: a run whose models are too small to mean anything says so.

When any role runs on the scripted backend (a deterministic test double that
answers word salad in the right format) or on the embedded SmolLM2-135M model
(too small to follow these prompts), the console summary, ``summary.json``,
``report.md`` and every plot title carry one line saying the numbers are a
smoke test, not research results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prose_sim.errors import UsageError
from prose_sim.models.protocol import ROLES
from prose_sim.runfolder import RunFolder

EMBEDDED = "smollm2-135m-instruct"


def notice_for(backends: Mapping[str, tuple[str, str]], constrained: Sequence[str] = ()) -> str:
    """``backends``: role -> (backend, model). "" when every role runs on a real model.
    ``constrained``: the roles whose verdicts and lists were kept to their shape, named too.

    A missing writer is the user's model, as a scenario without ``[models.writer]`` resolves."""
    if "writer" not in backends and "user" in backends:
        backends = {**backends, "writer": backends["user"]}
    scripted = [r for r in ROLES if backends.get(r, ("scripted", ""))[0] == "scripted"]
    embedded = [
        r
        for r in ROLES
        if backends.get(r, ("", ""))[0] == "local" and backends[r][1] in ("", EMBEDDED)
    ]
    parts = []
    if scripted:
        parts.append(f"{', '.join(scripted)} on the scripted test double")
    if embedded:
        parts.append(f"{', '.join(embedded)} on the embedded SmolLM2-135M")
    if not parts:
        return ""
    if constrained:
        parts.append(f"{', '.join(constrained)} answers constrained to their format")
    return f"smoke test: {'; '.join(parts)}; not research results"


def smoke_notice(scenario) -> str:
    """The notice of a loaded ``Scenario``."""
    return notice_for(
        {
            r: (getattr(scenario.models, r).backend, getattr(scenario.models, r).model)
            for r in ROLES
        },
        [r for r in ROLES if r != "writer" and getattr(scenario.models, r).constrained],
    )


def run_dir_notice(run_dir: Path) -> str:
    """The notice of a run folder, from its resolved scenario (its log's, else its
    ``scenario.toml``; no validation; "" without one)."""
    try:
        raw = RunFolder(run_dir).resolved_scenario()
    except UsageError:
        return ""
    models = raw.get("models", {}) if isinstance(raw.get("models"), dict) else {}
    backends = {}
    constrained = []
    for role in ROLES:
        if role == "writer" and "writer" not in models:
            continue  # the user's model, filled in by notice_for
        spec = models.get(role, {}) if isinstance(models.get(role), dict) else {}
        backends[role] = (str(spec.get("backend", "scripted")), str(spec.get("model", "")))
        if spec.get("constrained") is True:
            constrained.append(role)
    return notice_for(backends, constrained)
