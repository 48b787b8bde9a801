"""World assembly: a scenario and the world it runs in, built once and handed on whole.

``assemble`` builds what a scenario's episodes draw on, the persona catalog
(built-in, installed plugins' and the scenario's persona files) and the corpus
(bundled or the paper's datasets, plus personas' own documents), checks the
scenario against them (known tasks and personas, enough documents),
and returns a ``ResolvedRun`` that loading gives the runner. Nothing is kept
between calls: whoever holds the ``ResolvedRun`` holds the world.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

from prose_sim.config import Scenario, TaskSpec
from prose_sim.errors import ScenarioError, UsageError
from prose_sim.templating import SUFFIX, file_hash, prompt_folder_templates
from prose_sim.world.corpus import Corpus, bundled_corpus
from prose_sim.world.hf_datasets import load_hf_corpus
from prose_sim.world.personas import Persona, PersonaCatalog, catalog_with
from prose_sim.world.tasks import RUN_FRAMEWORKS, TASKS, persona_framework

# (run framework, task) -> persona names, in the scenario's order
Populations = dict[tuple[str, str], list[str]]


class ResolvedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A checked scenario (defaults resolved) with the world its episodes draw on."""

    scenario: Scenario
    catalog: PersonaCatalog
    corpus: Corpus
    populations: Populations

    def personas_digest(self) -> str:
        """A hash of every persona the run uses, whatever file or plugin defines it."""
        return personas_digest(self.scenario, self.catalog)

    def template_hashes(self) -> dict[str, str]:
        """Path -> hash of every template of the user's the run renders (its prompt folder's
        and its personas')."""
        return template_hashes(self.scenario, self.catalog)


def assemble(
    scenario: Scenario,
    *,
    origin: str = "",
    catalog: PersonaCatalog | None = None,
    corpus: Corpus | None = None,
) -> ResolvedRun:
    """Build (or take) the catalog and corpus, check the scenario against them, resolve it.

    ``origin`` names the scenario in errors (its file); a ``ScenarioError`` names the key.
    """
    origin = origin or f"scenario {scenario.name}"
    if catalog is None:
        try:
            catalog = scenario_catalog(scenario)
        except UsageError as exc:
            raise ScenarioError(origin, "persona_files", str(exc)) from None
    if corpus is None:
        corpus = scenario_corpus(scenario, catalog)
    resolved = check_world(scenario, origin, catalog, corpus)
    populations = {
        (framework, task): list(spec.personas or [])
        for task, spec in resolved.tasks.items()
        for framework in spec.frameworks
    }
    return ResolvedRun(scenario=resolved, catalog=catalog, corpus=corpus, populations=populations)


def load_corpus(scenario: Scenario, catalog: PersonaCatalog) -> Corpus:
    """The corpus a scenario names: "bundled", or "huggingface" (the paper's datasets, each
    user's documents shuffled per seed as the released code shuffles them)."""
    if scenario.corpus == "bundled":
        return bundled_corpus()
    if scenario.corpus == "huggingface":
        return load_hf_corpus(
            task_sources(scenario, catalog),
            scenario.seeds,
            scenario.demonstrations_per_user,
            data_dir=Path(scenario.corpus_dir) if scenario.corpus_dir else None,
            interleaved=interleaved_tasks(scenario),
        )
    raise UsageError(f"unknown corpus {scenario.corpus!r} (known: bundled, huggingface)")


def interleaved_tasks(scenario: Scenario) -> list[str]:
    """Tasks whose users may share an episode: any method retrieves other than exact_match."""
    if all(spec.retrieval_mode == "exact_match" for spec in scenario.methods.values()):
        return []
    return list(scenario.tasks)


def scenario_catalog(scenario: Scenario) -> PersonaCatalog:
    """Built-in personas, installed plugins' and the scenario's persona files'."""
    return catalog_with(tuple(scenario.persona_files))


def scenario_corpus(scenario: Scenario, catalog: PersonaCatalog | None = None) -> Corpus:
    """The scenario's corpus, with the documents of personas that bring their own."""
    catalog = catalog or scenario_catalog(scenario)
    corpus = load_corpus(scenario, catalog)
    own = [d for p in scenario_personas(scenario, catalog) for d in p.own_documents()]
    return corpus.with_documents(own)


def scenario_personas(scenario: Scenario, catalog: PersonaCatalog) -> list[Persona]:
    """Every persona a scenario may use."""
    return [p for personas in _personas_by_task(scenario, catalog).values() for p in personas]


def task_sources(scenario: Scenario, catalog: PersonaCatalog) -> dict[str, tuple[str, ...]]:
    """Each task's corpus sources: those of the personas it may use (sorted)."""
    return {
        task: tuple(sorted({p.source for p in personas if p.source}))
        for task, personas in _personas_by_task(scenario, catalog).items()
    }


def _personas_by_task(scenario: Scenario, catalog: PersonaCatalog) -> dict[str, list[Persona]]:
    """Every persona a scenario may use, by task."""
    out: dict[str, list[Persona]] = {}
    for task_name, spec in scenario.tasks.items():
        out[task_name] = []
        for framework in spec.frameworks:
            known = catalog.names(framework, task_name)
            for name in _chosen(
                spec.personas, catalog, framework, task_name, scenario.persona_files
            ):
                if name in known:
                    out[task_name].append(catalog.get(framework, task_name, name))
    return out


def personas_digest(scenario: Scenario, catalog: PersonaCatalog | None = None) -> str:
    """A hash of every persona a scenario uses (``catalog`` default: the scenario's, built)."""
    personas = scenario_personas(scenario, catalog or scenario_catalog(scenario))
    return hashlib.blake2b(msgspec.json.encode(personas), digest_size=8).hexdigest()


def template_hashes(scenario: Scenario, catalog: PersonaCatalog) -> dict[str, str]:
    """Path -> hash of the scenario's prompt folder's templates and its personas' own."""
    folder = scenario.prompts.dir
    paths = list(prompt_folder_templates(Path(folder)).values()) if folder else []
    for persona in scenario_personas(scenario, catalog):
        if persona.behaviour.template.endswith(SUFFIX):
            paths.append(Path(persona.behaviour.template))
    hashes = {}
    for path in paths:
        try:
            hashes[str(path)] = file_hash(path)
        except OSError:
            hashes[str(path)] = "missing"
    return hashes


def persona_sources(scenario: Scenario, catalog: PersonaCatalog) -> tuple[str, ...]:
    """The corpus sources of every persona a scenario may use (sorted)."""
    return tuple(sorted({p.source for p in scenario_personas(scenario, catalog) if p.source}))


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


def check_world(
    scenario: Scenario, origin: str, catalog: PersonaCatalog, corpus: Corpus
) -> Scenario:
    """Checks that need the world: tasks, personas, document counts (the methods' and
    the models' tables are checked as they load).

    Returns the scenario with defaults resolved (each task's persona list, the writer).
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
    if scenario.models.writer is None:  # the released code's writer: the user's model
        scenario = msgspec.structs.replace(
            scenario, models=msgspec.structs.replace(scenario.models, writer=scenario.models.user)
        )
    metrics = scenario.metrics
    if metrics.judge and metrics.judge_parsing == "released" and scenario.models.judge.constrained:
        raise ScenarioError(
            origin,
            "metrics.judge_parsing",
            '"released" reads the judge\'s "Verdict:" line, which a constrained judge '
            "(models.judge.constrained = true) never writes: every verdict would score 0; "
            'use judge_parsing = "forgiving" or an unconstrained judge',
        )
    assert all(f in RUN_FRAMEWORKS for t in tasks.values() for f in t.frameworks)
    return msgspec.structs.replace(scenario, tasks=tasks)
