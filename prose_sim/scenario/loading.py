"""Loading a scenario: TOML and ``--set`` overrides into the schema, errors that name the key.

Loading checks everything that can be checked before the run starts: unknown
keys and wrong types here (each method's table against that method's settings,
each role's against its backend kind's), then (through the world assembly)
unknown tasks and personas and whether the corpus holds enough documents. Every
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

from prose_sim.actors.inferrers import check_settings, method_class, unknown_method
from prose_sim.config import (
    BUILTIN_SPECS,
    DEFAULT_BACKEND,
    LABEL_PATTERN,
    NAME_MAX,
    BudgetSettings,
    MethodSettings,
    Models,
    ModelSpec,
    Scenario,
    TaskSpec,
)
from prose_sim.errors import ScenarioError, UsageError, explain_validation
from prose_sim.models.registry import backend_kind
from prose_sim.templating import check_prompt_folder
from prose_sim.world.assembly import ResolvedRun, assemble
from prose_sim.world.corpus import Corpus
from prose_sim.world.personas import PersonaCatalog


def load_run(
    path: str | Path,
    overrides: Sequence[str] = (),
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
    *,
    recorded: bool = False,
) -> ResolvedRun:
    """A scenario file (with ``--set`` overrides) read, checked and assembled into its world.

    ``recorded``: the file is a run folder's resolved scenario, which versions before
    per-backend model tables wrote with every backend's keys at their defaults; those
    keys are dropped where the role's backend does not take them."""
    path = Path(path)
    raw = read_toml(path)
    if recorded:
        drop_other_backends_defaults(raw)
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
    """Tables into the schema, with overrides and presets applied, each method's and each
    role's table checked by its method or backend kind; not yet checked against the world
    (tasks, personas, documents). ``raw`` is changed in place."""
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
    tasks = raw.get("tasks")
    if isinstance(tasks, dict):
        for name, entry in tasks.items():
            _convert(entry, TaskSpec, origin, f"tasks.{name}")
    # each method's table is its method's Struct, each role's its backend kind's
    methods, models = raw.get("methods"), raw.get("models")
    typed = dict(raw)
    if isinstance(methods, dict):
        typed["methods"] = {}
    if isinstance(models, dict):
        typed["models"] = {}
    scenario: Scenario = _convert(typed, Scenario, origin, "")
    if isinstance(methods, dict):
        scenario.methods = {
            label: method_settings(label, entry, origin) for label, entry in methods.items()
        }
    if isinstance(models, dict):
        scenario.models = model_specs(models, origin)
    check_values(scenario, origin)
    return scenario


def method_settings(label: str, table: Any, origin: str) -> MethodSettings:
    """A method's table as its method's settings Struct, checked by the method."""
    key = f"methods.{label}"
    if not isinstance(table, dict) or not isinstance(table.get("method", label), str):
        _convert(table, MethodSettings, origin, key)  # the type error, named
    method = table.get("method") or label
    where = key + (".method" if table.get("method") else "")
    try:
        cls = method_class(method)  # a plugin's is imported here, so a broken one fails at load
    except KeyError:
        raise ScenarioError(origin, where, unknown_method(method)) from None
    except UsageError as exc:
        raise ScenarioError(origin, where, str(exc)) from None
    for knob in table:
        if knob not in cls.settings_type.__struct_fields__:
            raise ScenarioError(origin, f"{key}.{knob}", f"not a setting of method {method!r}")
    settings: MethodSettings = _convert(table, cls.settings_type, origin, key)
    problem = check_settings(method, settings)
    if problem:
        raise ScenarioError(origin, f"{key}.{problem[0]}", problem[1])
    return settings


def model_specs(tables: dict[str, Any], origin: str) -> Models:
    """The ``[models]`` tables, each role's as its backend kind's Struct, checked by the kind."""
    specs: dict[str, ModelSpec] = {}
    for role, table in tables.items():
        key = f"models.{role}"
        if role not in Models.__struct_fields__:
            raise ScenarioError(origin, key, "unknown key")
        if not isinstance(table, dict) or not isinstance(table.get("backend", ""), str):
            _convert(table, ModelSpec, origin, key)  # the type error, named
        backend = table.get("backend", DEFAULT_BACKEND)
        try:
            kind = backend_kind(backend)
        except UsageError as exc:  # an unknown name, a broken plugin
            raise ScenarioError(origin, f"{key}.backend", str(exc)) from None
        spec_type = kind.spec_type
        for name in table:
            if name not in spec_type.__struct_fields__:
                raise ScenarioError(origin, f"{key}.{name}", _not_a_key(name, backend))
        spec: ModelSpec = _convert(table, spec_type, origin, key)
        problem = kind.problem(spec)
        if problem is not None:
            raise ScenarioError(origin, f"{key}.{problem[0]}", problem[1])
        specs[role] = spec
    return Models(**specs)


def _not_a_key(name: str, backend: str) -> str:
    owners = [kind for kind, spec in BUILTIN_SPECS.items() if name in spec.__struct_fields__]
    if not owners:
        return "unknown key"
    return f"not a key of backend {backend!r} (a key of backend {' and '.join(map(repr, owners))})"


def drop_other_backends_defaults(raw: dict[str, Any]) -> None:
    """Drop, from each role of a recorded scenario, the keys of another built-in backend
    that hold that backend's default (written by versions with one flat model table)."""
    models = raw.get("models")
    if not isinstance(models, dict):
        return
    for table in models.values():
        if not isinstance(table, dict) or not isinstance(table.get("backend", ""), str):
            continue
        try:
            own = backend_kind(table.get("backend", DEFAULT_BACKEND)).spec_type
        except UsageError:  # named when the table is converted
            continue
        for kind_spec in BUILTIN_SPECS.values():
            defaults = kind_spec()
            for name in set(kind_spec.__struct_fields__) - set(own.__struct_fields__):
                if name in table and table[name] == getattr(defaults, name):
                    del table[name]


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
    if scenario.report.baseline and scenario.report.baseline not in scenario.methods:
        raise ScenarioError(
            origin,
            "report.baseline",
            f"{scenario.report.baseline!r} is not a method label of the scenario "
            f"({', '.join(scenario.methods)})",
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


def scenario_tables(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario's tables (defaults written out; unset options left out)."""
    tables: dict[str, Any] = _drop_none(msgspec.to_builtins(scenario))
    return tables


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as TOML (``scenario_tables``)."""
    return tomli_w.dumps(scenario_tables(scenario))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def with_budget_overrides(scenario: Scenario, overrides: Sequence[str], origin: str) -> Scenario:
    """``scenario`` with ``--set budget.KEY=VALUE`` overrides applied to its ``[budget]`` alone
    (what a resumed run may change: see ``split_budget_overrides``)."""
    if not overrides:
        return scenario
    raw: dict[str, Any] = {"budget": _drop_none(msgspec.to_builtins(scenario.budget or {}))}
    for item in overrides:
        apply_override(raw, item)
    budget = _convert(raw["budget"], BudgetSettings, origin, "budget")
    return msgspec.structs.replace(scenario, budget=budget)


def split_budget_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(``--set budget.*`` overrides, the others): a resumed run may raise its budget (the
    budget is not part of what the run computes), and nothing else."""
    budget = [o for o in overrides if o.strip().startswith("budget.")]
    return budget, [o for o in overrides if o not in budget]
