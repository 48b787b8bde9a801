"""Scenario files: TOML decoded into msgspec Structs, with errors that name the key.

A scenario says which tasks, simulated users, methods, seeds and models a run
covers. Loading checks everything that can be checked before the run starts:
unknown keys, wrong types, unknown tasks, personas and methods, and whether the
corpus holds enough documents. Every error names the file, the key path and
the reason, and the CLI prints it as one line with exit code 2.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import tomli_w

from prose_sim.actors.inferrers import check_settings, method_class, unknown_method
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.errors import UsageError, explain_validation
from prose_sim.metrics.settings import MetricsSettings
from prose_sim.models.backends.faulty import FaultSettings
from prose_sim.models.embeddings import RetrievalSettings
from prose_sim.world.corpus import Corpus, load_corpus
from prose_sim.world.personas import Persona, PersonaCatalog, catalog_with
from prose_sim.world.tasks import RUN_FRAMEWORKS, TASKS, persona_framework

Framework = Literal["plume", "prelude", "prelude.no_edit"]
Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base for scenario tables: unknown keys are errors."""


class TaskSpec(Strict):
    # one framework or several; each gives its own episodes
    framework: Framework | list[Framework] = "plume"
    # persona names (see `prose-sim personas list`); "files": every persona of the task in the
    # scenario's persona_files (e.g. a generated population); "all": built-in, plugins' and files';
    # default: the paper's users of the task
    personas: list[str] | Literal["files", "all"] | None = None

    @property
    def frameworks(self) -> list[str]:
        return [self.framework] if isinstance(self.framework, str) else list(self.framework)


# A method table: `method` (default: the table's name) and that method's knobs.
MethodSpec = MethodSettings
# The [metrics] table: judge metrics, the BERTScore model, verifiable checks.
MetricsSpec = MetricsSettings


class ModelSpec(Strict):
    # scripted: the deterministic test double; local: a transformers model served in-process;
    # openai: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, Ollama, ...)
    backend: Literal["scripted", "local", "openai"] = "scripted"
    # local: a Hugging Face name, a local folder, a .gguf file, or the embedded
    # "smollm2-135m-instruct" (the default); openai: the served model's name; scripted: a label
    model: str = ""
    # openai only: the endpoint ("" = OpenAI's) and the NAME of the environment variable
    # that holds its key (the key itself never goes into a scenario)
    base_url: str = ""
    # openai only, instead of base_url: several endpoints serving the same model (e.g. vLLM
    # replicas), balanced by outstanding requests; an endpoint that keeps failing is taken
    # out for a cooldown and retried later. rpm, tpm and max_concurrency below are EACH
    # endpoint's own limits (not the total), and api_key_env names the key for all of them
    base_urls: list[str] = []
    api_key_env: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "OPENAI_API_KEY"
    )
    # any backend, shared by every role on the same endpoint: requests and tokens per
    # rate_window_s seconds (default: unlimited), and the adaptive concurrency cap's
    # ceiling (default: the run's concurrency; also the HTTP connection pool's size)
    rpm: Positive | None = None
    tpm: Positive | None = None
    rate_window_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    max_concurrency: Positive | None = None
    # USD per million input / output tokens, for the run's cost accounting
    input_price: NonNegative = 0.0
    output_price: NonNegative = 0.0
    temperature: NonNegative = 0.0
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    top_k: Annotated[int, msgspec.Meta(ge=0)] = 0
    repetition_penalty: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    max_new_tokens: Positive = 512
    # local backend only: weights dtype (auto: bfloat16 on CUDA, float32 on CPU), device,
    # and the server's scheduling (most requests decoding together; how long an idle server
    # waits for the requests sent with the first)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_batch_size: Positive = 32
    max_wait_s: NonNegative = 0.02
    # start answers with the format keyword a prompt asks for ("Preferences:", "Verdict:"),
    # where the backend can (local); it keeps small models to the expected format
    response_prefix: bool = True
    # keep verdicts to the scale's keywords and lists to a JSON list of strings (local: by
    # masking logits; openai: the server's structured output, response_format json_schema,
    # as vLLM and SGLang take it); the judge then answers with the keyword alone
    constrained: bool = False
    # scripted backend only: simulated latency (seconds) and answer length (words)
    latency_s: NonNegative = 0.0
    latency_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    min_words: Positive = 30
    max_words: Positive = 90
    # any backend: inject failures, latency spikes and malformed answers (seeded), to test
    # a setup's fault handling; e.g. [models.agent.faults] failure_rate = 0.2
    faults: FaultSettings | None = None


class Models(Strict):
    # the simulated user
    user: ModelSpec = msgspec.field(default_factory=ModelSpec)
    # writes every draft and PROSE candidate (the released code: the user's model, GPT-4o);
    # unset: the user's spec, resolved at load
    writer: ModelSpec | None = None
    # the model under test: only infers (refine, break down, validate, coalesce, CIPHER)
    agent: ModelSpec = msgspec.field(default_factory=ModelSpec)
    judge: ModelSpec = msgspec.field(default_factory=ModelSpec)

    def of(self, role: str) -> ModelSpec:
        """The spec serving ``role`` (the writer defaults to the user's)."""
        if role == "writer":
            return self.writer if self.writer is not None else self.user
        return getattr(self, role)


class RetrySpec(Strict):
    attempts: Positive = 3
    backoff_s: NonNegative = 0.5
    max_backoff_s: NonNegative = 30.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # the circuit breaker: stop the run (exit 1, resumable) when a role's last N calls
    # all failed after their retries; 0 turns it off
    breaker_calls: Annotated[int, msgspec.Meta(ge=0)] = 10


class Scenario(Strict, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    seeds: Annotated[list[int], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [1235]
    )
    demonstrations_per_user: Positive = 5
    # "bundled": documents shipped with prose_sim; "huggingface": the paper's datasets
    corpus: Literal["bundled", "huggingface"] = "bundled"
    # huggingface corpus only: documents kept per source (the first that pass the filters)
    corpus_max_per_source: Positive = 200
    # episodes in flight at once; default: all of them
    concurrency: Positive | None = None
    # persona TOML files or folders, beside the built-in and installed plugins' personas
    # (relative paths are relative to the scenario file)
    persona_files: list[str] = []
    tasks: dict[str, TaskSpec]
    methods: dict[str, MethodSpec]
    models: Models = msgspec.field(default_factory=Models)
    retry: RetrySpec = msgspec.field(default_factory=RetrySpec)
    metrics: MetricsSpec = msgspec.field(default_factory=MetricsSpec)
    # how the cosine_sim and bertscore retrieval modes compare documents
    retrieval: RetrievalSettings = msgspec.field(default_factory=RetrievalSettings)

    def method_of(self, label: str) -> str:
        return self.methods[label].method or label

    def digest(self) -> str:
        return hashlib.blake2b(msgspec.json.encode(self), digest_size=8).hexdigest()


class ScenarioError(UsageError):
    def __init__(self, origin: str, key: str, reason: str):
        self.origin, self.key, self.reason = origin, key, reason
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {reason}")


# --- loading -----------------------------------------------------------------


def load_scenario(
    path: str | Path,
    overrides: list[str] = (),  # type: ignore[assignment]
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
) -> Scenario:
    path = Path(path)
    origin = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{origin}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{origin}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(origin, "", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ScenarioError(origin, "", "invalid TOML: nested too deeply") from None
    return scenario_from_dict(raw, origin, overrides, catalog, corpus, base_dir=path.parent)


def scenario_from_dict(
    raw: dict[str, Any],
    origin: str,
    overrides: list[str] = (),  # type: ignore[assignment]
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
    base_dir: Path = Path("."),
) -> Scenario:
    for item in overrides:
        apply_override(raw, item)
    apply_generation_presets(raw)
    files = raw.get("persona_files")
    if isinstance(files, list):  # resolved here, so the saved scenario works from anywhere
        raw["persona_files"] = [
            str((base_dir / f).resolve()) if isinstance(f, str) else f for f in files
        ]
    # Tables keyed by name are converted entry by entry first, because
    # msgspec reports a dict key in a path as "[...]" and we want its name.
    for field, spec_type in (("tasks", TaskSpec), ("methods", MethodSpec)):
        table = raw.get(field)
        if isinstance(table, dict):
            for name, entry in table.items():
                _convert(entry, spec_type, origin, f"{field}.{name}")
    scenario = _convert(raw, Scenario, origin, "")
    if catalog is None:
        try:
            catalog = scenario_catalog(scenario)
        except UsageError as exc:
            raise ScenarioError(origin, "persona_files", str(exc)) from None
    return _check(scenario, origin, catalog, corpus or scenario_corpus(scenario, catalog))


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
    for role, table in models.items():
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


def scenario_catalog(scenario: Scenario) -> PersonaCatalog:
    """Built-in personas, installed plugins' and the scenario's persona files'."""
    return catalog_with(tuple(scenario.persona_files))


def scenario_personas(scenario: Scenario, catalog: PersonaCatalog) -> list[Persona]:
    """Every persona a scenario may use."""
    out = []
    for task_name, spec in scenario.tasks.items():
        for framework in spec.frameworks:
            known = catalog.names(framework, task_name)
            for name in _chosen(
                spec.personas, catalog, framework, task_name, scenario.persona_files
            ):
                if name in known:
                    out.append(catalog.get(framework, task_name, name))
    return out


def _chosen(
    personas: list[str] | str | None,
    catalog: PersonaCatalog,
    framework: str,
    task: str,
    files: list[str],
) -> list[str]:
    """A task's persona names: as listed, or the default / "files" / "all" population."""
    if isinstance(personas, list):
        return personas
    if personas == "all":
        return catalog.names(framework, task)
    if personas == "files":
        return [
            n
            for n in catalog.names(framework, task)
            if catalog.origins.get((persona_framework(framework), task, n)) in files
        ]
    return catalog.builtin_names(framework, task)


def personas_digest(scenario: Scenario, catalog: PersonaCatalog | None = None) -> str:
    """A hash of every persona a scenario uses, whatever file or plugin defines it."""
    personas = scenario_personas(scenario, catalog or scenario_catalog(scenario))
    return hashlib.blake2b(msgspec.json.encode(personas), digest_size=8).hexdigest()


def persona_sources(scenario: Scenario, catalog: PersonaCatalog) -> tuple[str, ...]:
    """The corpus sources of every persona a scenario may use (sorted)."""
    return tuple(sorted({p.source for p in scenario_personas(scenario, catalog) if p.source}))


def scenario_corpus(scenario: Scenario, catalog: PersonaCatalog | None = None) -> Corpus:
    """The scenario's corpus, with the documents of personas that bring their own."""
    catalog = catalog or scenario_catalog(scenario)
    corpus = load_corpus(
        scenario.corpus, persona_sources(scenario, catalog), scenario.corpus_max_per_source
    )
    own = [d for p in scenario_personas(scenario, catalog) for d in p.own_documents()]
    return corpus.with_documents(own)


def _check(scenario: Scenario, origin: str, catalog: PersonaCatalog, corpus: Corpus) -> Scenario:
    """Checks that need the world: tasks, personas, methods, document counts.

    Returns the scenario with defaults resolved (each task's persona list).
    """
    if not scenario.tasks:
        raise ScenarioError(origin, "tasks", "at least one task is required")
    if not scenario.methods:
        raise ScenarioError(origin, "methods", "at least one method is required")
    if len(set(scenario.seeds)) != len(scenario.seeds):
        raise ScenarioError(origin, "seeds", "seeds must be distinct")
    tasks: dict[str, TaskSpec] = {}
    for task_name, spec in scenario.tasks.items():
        key = f"tasks.{task_name}"
        if task_name not in TASKS:
            raise ScenarioError(
                origin, key, f"unknown task {task_name!r} (known: {', '.join(TASKS)})"
            )
        personas = spec.personas
        for framework in spec.frameworks:
            known = catalog.names(framework, task_name)
            # default: the paper's users (plugin and file personas only when named)
            chosen = _chosen(personas, catalog, framework, task_name, scenario.persona_files)
            for i, name in enumerate(chosen):
                if name not in known:
                    raise ScenarioError(
                        origin,
                        f"{key}.personas[{i}]",
                        f"unknown persona {name!r} for {framework} {task_name} (known: {', '.join(known)})",
                    )
                source = catalog.get(framework, task_name, name).document_source
                available = corpus.count(source)
                if scenario.demonstrations_per_user > available:
                    raise ScenarioError(
                        origin,
                        "demonstrations_per_user",
                        f"{scenario.demonstrations_per_user} demonstrations per user, but source "
                        f"{source!r} (persona {name!r}) has only {available} documents",
                    )
        if not isinstance(personas, list):
            personas = _chosen(
                personas, catalog, spec.frameworks[0], task_name, scenario.persona_files
            )
        if len(set(personas)) != len(personas):
            raise ScenarioError(origin, f"{key}.personas", "personas must be distinct")
        if not personas:
            raise ScenarioError(origin, f"{key}.personas", "at least one persona is required")
        tasks[task_name] = msgspec.structs.replace(spec, personas=list(personas))
    for label, spec in scenario.methods.items():
        method = spec.method or label
        where = f"methods.{label}" + (".method" if spec.method else "")
        try:
            method_class(method)  # a plugin's is imported here, so a broken one fails at load
        except KeyError:
            raise ScenarioError(origin, where, unknown_method(method)) from None
        except UsageError as exc:
            raise ScenarioError(origin, where, str(exc)) from None
        problem = check_settings(method, spec)
        if problem:
            raise ScenarioError(origin, f"methods.{label}.{problem[0]}", problem[1])
    if scenario.models.writer is None:  # the released code's writer: the user's model
        scenario = msgspec.structs.replace(
            scenario, models=msgspec.structs.replace(scenario.models, writer=scenario.models.user)
        )
    for role in ("user", "writer", "agent", "judge"):
        model = scenario.models.of(role)
        if model.backend == "openai" and not model.model:
            raise ScenarioError(
                origin, f"models.{role}.model", "required for backend 'openai' (e.g. \"gpt-4o\")"
            )
        if model.base_urls and model.base_url:
            raise ScenarioError(
                origin,
                f"models.{role}.base_urls",
                "give base_url (one endpoint) or base_urls (several), not both",
            )
    assert all(f in RUN_FRAMEWORKS for t in tasks.values() for f in t.frameworks)
    return msgspec.structs.replace(scenario, tasks=tasks)


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as TOML (defaults written out; unset options left out)."""
    return tomli_w.dumps(_drop_none(msgspec.to_builtins(scenario)))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
