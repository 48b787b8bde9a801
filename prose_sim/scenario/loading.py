"""Loading a scenario: TOML and ``--set`` overrides into the schema, errors that name the key.

Loading checks everything that can be checked before the run starts: unknown
keys and wrong types here, then (through the world assembly) unknown tasks,
personas and methods and whether the corpus holds enough documents. Every
error is a ``ScenarioError`` naming the file, the key path and the reason; the
CLI prints it as one line with exit code 2.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import tomli_w

from prose_sim.errors import ScenarioError, UsageError, explain_validation
from prose_sim.scenario.schema import LABEL_PATTERN, NAME_MAX, MethodSpec, Scenario, TaskSpec
from prose_sim.templating import check_prompt_folder
from prose_sim.world.assembly import ResolvedRun, assemble
from prose_sim.world.corpus import Corpus
from prose_sim.world.personas import PersonaCatalog


def load_run(
    path: str | Path,
    overrides: Sequence[str] = (),
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
) -> ResolvedRun:
    """A scenario file (with ``--set`` overrides) read, checked and assembled into its world."""
    path = Path(path)
    raw = read_toml(path)
    return run_from_dict(raw, str(path), overrides, catalog, corpus, base_dir=path.parent)


def load_scenario(
    path: str | Path,
    overrides: Sequence[str] = (),
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
) -> Scenario:
    """The checked scenario of a file (its world built to check it, then dropped)."""
    return load_run(path, overrides, catalog, corpus).scenario


def read_toml(path: Path) -> dict[str, Any]:
    """A scenario file's TOML, or a one-line error naming the file."""
    origin = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{origin}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{origin}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(origin, "", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ScenarioError(origin, "", "invalid TOML: nested too deeply") from None


def run_from_dict(
    raw: dict[str, Any],
    origin: str,
    overrides: Sequence[str] = (),
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
    base_dir: Path = Path("."),
) -> ResolvedRun:
    """A scenario's tables (``origin`` names them in errors), checked and assembled."""
    scenario = parse_scenario(raw, origin, overrides, base_dir)
    return assemble(scenario, origin=origin, catalog=catalog, corpus=corpus)


def scenario_from_dict(
    raw: dict[str, Any],
    origin: str,
    overrides: Sequence[str] = (),
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
    base_dir: Path = Path("."),
) -> Scenario:
    """The checked scenario of a scenario's tables."""
    return run_from_dict(raw, origin, overrides, catalog, corpus, base_dir).scenario


def parse_scenario(
    raw: dict[str, Any], origin: str, overrides: Sequence[str] = (), base_dir: Path = Path(".")
) -> Scenario:
    """Tables into the schema, with overrides and presets applied; not yet checked against
    the world (personas, documents, methods). ``raw`` is changed in place."""
    for item in overrides:
        apply_override(raw, item)
    apply_generation_presets(raw)
    files = raw.get("persona_files")
    if isinstance(files, list):  # resolved here, so the saved scenario works from anywhere
        raw["persona_files"] = [
            str((base_dir / f).resolve()) if isinstance(f, str) else f for f in files
        ]
    corpus_dir = raw.get("corpus_dir")
    if isinstance(corpus_dir, str) and corpus_dir:  # resolved here, as persona_files are
        raw["corpus_dir"] = str((base_dir / corpus_dir).resolve())
    prompts = raw.get("prompts")
    if isinstance(prompts, dict) and isinstance(prompts.get("dir"), str) and prompts["dir"]:
        prompts["dir"] = str((base_dir / Path(prompts["dir"]).expanduser()).resolve())
    # Tables keyed by name are converted entry by entry first, because
    # msgspec reports a dict key in a path as "[...]" and we want its name.
    spec_types: tuple[tuple[str, type], ...] = (("tasks", TaskSpec), ("methods", MethodSpec))
    for field, spec_type in spec_types:
        table = raw.get(field)
        if isinstance(table, dict):
            for name, entry in table.items():
                _convert(entry, spec_type, origin, f"{field}.{name}")
    scenario: Scenario = _convert(raw, Scenario, origin, "")
    check_values(scenario, origin)
    return scenario


def check_values(scenario: Scenario, origin: str) -> None:
    """What the schema's types cannot say: finite numbers, method labels, a usable prompt
    folder, rate budgets a request fits in."""
    for label in scenario.methods:
        if not re.fullmatch(LABEL_PATTERN, label) or len(label) > NAME_MAX:
            raise ScenarioError(
                origin,
                f"methods.{label!r}",
                f"a method label is 1 to {NAME_MAX} letters, digits, '_', '.', '+' or '-'",
            )
    for key, value in flatten_settings(msgspec.to_builtins(scenario)).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(origin, key, f"{value} is not a finite number")
    for role in ("user", "writer", "agent", "judge"):
        spec = scenario.models.of(role)
        if spec.tpm is not None and spec.tpm < spec.max_new_tokens:
            raise ScenarioError(
                origin,
                f"models.{role}.tpm",
                f"{spec.tpm} tokens per window is less than one request "
                f"(max_new_tokens = {spec.max_new_tokens}, and its prompt): no call could be sent",
            )
    if scenario.prompts.dir:
        problem = check_prompt_folder(Path(scenario.prompts.dir))
        if problem:
            raise ScenarioError(origin, "prompts.dir", problem)


def flatten_settings(value: Any, prefix: str = "", *, into_lists: bool = True) -> dict[str, Any]:
    """``{"a.b[0]": value}`` for every leaf of a scenario's tables; with ``into_lists``
    False a list is one leaf (``{"a.b": [...]}``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.update(flatten_settings(v, key, into_lists=into_lists))
        return out
    if into_lists and isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten_settings(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


# The released code's generation settings by model family (llms/openai_gpt.py: temperature
# 0.01 from experiment_config.yaml, max_tokens 4000; llms/qwen2_5.py's sampling), applied to
# a role whose model name matches unless the scenario sets that key itself.
GENERATION_PRESETS: list[tuple[str, dict[str, object]]] = [
    ("gpt", {"temperature": 0.01, "max_new_tokens": 4000}),
    (
        "qwen2.5",
        {
            "temperature": 0.7,
            "top_p": 0.8,
            "top_k": 20,
            "repetition_penalty": 1.05,
            "max_new_tokens": 1000,
        },
    ),
]


def generation_preset(model: str) -> dict[str, object]:
    """The preset for a model name ('gpt-4o', 'Qwen/Qwen2.5-7B-Instruct', ...), or {}."""
    name = model.rsplit("/", 1)[-1].lower().replace("-", "").replace("_", "")
    for prefix, preset in GENERATION_PRESETS:
        if name.startswith(prefix.replace("-", "")):
            return preset
    return {}


def apply_generation_presets(raw: dict[str, Any]) -> None:
    """Fill each role's unset sampling keys from its model's preset (in place)."""
    models = raw.get("models")
    if not isinstance(models, dict):
        return
    user = models.get("user") if isinstance(models.get("user"), dict) else None
    for table in models.values():
        if not isinstance(table, dict) or not isinstance(table.get("model"), str):
            continue
        for key, value in generation_preset(table["model"]).items():
            table.setdefault(key, value)
    if user is not None and "writer" not in models:
        models["writer"] = dict(user)  # the writer is the user's model unless given


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``--set KEY=VALUE``: a dotted key, a TOML value (bare words are strings)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set {item!r}: expected KEY=VALUE")
    value: Any
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    except RecursionError:
        raise UsageError(f"--set {key}: the value is nested too deeply") from None
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a table")
        node = child
    node[parts[-1]] = value


def _convert(value: Any, type_: type, origin: str, prefix: str) -> Any:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        key, reason = explain_validation(str(exc))
        raise ScenarioError(
            origin, _join(prefix, key) if key != "(top level)" else prefix or key, reason
        ) from None


def _join(key: str, field: str) -> str:
    return f"{key}.{field}" if key else field


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as TOML (defaults written out; unset options left out)."""
    return tomli_w.dumps(_drop_none(msgspec.to_builtins(scenario)))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
