"""The persona catalog: simulated users with hidden writing preferences.

The built-in catalog (``personas.toml``) holds the paper's 9 PLUME and 9
PRELUDE users. More come from TOML files a scenario names (``persona_files``)
and from installed plugins (entry points in the ``prose_sim.personas`` group),
validated at load. A persona is identified by (framework, task, name).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec

from prose_sim.entry_points import plugins
from prose_sim.errors import UsageError, explain_validation
from prose_sim.templating import SUFFIX, builtin_names, check_template, resolve_template
from prose_sim.world.corpus import Document
from prose_sim.world.tasks import FRAMEWORKS, TASKS, persona_framework


class Behaviour(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a simulated user demonstrates (defaults: as its framework's users do)."""

    # the prompt it writes from: a template name in prompts/ or a path to a .j2 file, relative
    # to the persona file, inside its folder; rendered sandboxed (variables: task, framework,
    # document, preferences, and draft when editing)
    template: str = ""
    # read and edit the agent's draft, PRELUDE-style (None: only in the prelude framework)
    edit: bool | None = None
    # leave each component out of a demonstration with this probability (a noisy user)
    ignore_probability: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0


class Persona(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    framework: str
    task: str
    name: str
    components: Annotated[list[str], msgspec.Meta(min_length=1)]
    # where its documents come from: a corpus source, or its own documents
    source: str = ""
    documents: list[str] = []
    behaviour: Behaviour = Behaviour()

    @property
    def preferences(self) -> str:
        """The true preferences as one string, components joined by '; '."""
        return "; ".join(self.components)

    @property
    def document_source(self) -> str:
        """The corpus source its documents are drawn from (its own documents get one)."""
        return self.source or f"persona:{self.framework}/{self.task}/{self.name}"

    def own_documents(self) -> list[Document]:
        return [
            Document(id=f"{self.name}-{i:03d}", source=self.document_source, text=text)
            for i, text in enumerate(self.documents)
        ]


class _CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    persona: list[Persona]


class PersonaCatalog:
    """Look-ups over a list of personas."""

    def __init__(
        self, personas: list[Persona], origins: dict[tuple[str, str, str], str] | None = None
    ):
        self._by_key = {(p.framework, p.task, p.name): p for p in personas}
        if len(self._by_key) != len(personas):
            raise ValueError("persona catalog has duplicate (framework, task, name)")
        # where each persona was defined: "built-in", a file, or "plugin NAME"
        self.origins = origins or {key: "built-in" for key in self._by_key}

    def builtin_names(self, framework: str, task: str) -> list[str]:
        """The paper's users of a task: a scenario's default population."""
        framework = persona_framework(framework)
        return [
            n
            for n in self.names(framework, task)
            if self.origins.get((framework, task, n)) == "built-in"
        ]

    def origin(self, persona: Persona) -> str:
        return self.origins.get((persona.framework, persona.task, persona.name), "built-in")

    def get(self, framework: str, task: str, name: str) -> Persona:
        """A run framework's persona ("prelude.no_edit" has PRELUDE's users)."""
        return self._by_key[(persona_framework(framework), task, name)]

    def names(self, framework: str, task: str) -> list[str]:
        framework = persona_framework(framework)
        return [n for (f, t, n) in self._by_key if f == framework and t == task]

    def for_task(self, framework: str, task: str) -> list[Persona]:
        return [self.get(framework, task, n) for n in self.names(framework, task)]

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


def builtin_catalog() -> PersonaCatalog:
    """The paper's users (``personas.toml``), read afresh (the world assembly keeps them)."""
    data = resources.files("prose_sim.world").joinpath("personas.toml").read_bytes()
    return PersonaCatalog(msgspec.toml.decode(data, type=_CatalogFile).persona)


# --- personas from files and plugins ------------------------------------------------

ENTRY_POINT_GROUP = "prose_sim.personas"


# a persona's name goes into episode ids and file names
NAME_MAX = 64


def load_persona_file(path: Path) -> list[Persona]:
    """Personas from a TOML file (``[[persona]]`` tables), or every ``*.toml`` of a folder."""
    if path.is_dir():
        return [p for child in sorted(path.glob("*.toml")) for p in load_persona_file(child)]
    if path.exists() and not path.is_file():  # a device or a pipe would be read forever
        raise UsageError(f"{path}: not a regular file (a persona file is a TOML file or a folder)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such persona file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid TOML: nested too deeply") from None
    return personas_from_dicts(
        raw.get("persona", None) if isinstance(raw, dict) else None,
        str(path),
        base=path.resolve().parent,
    )


def personas_from_dicts(entries: object, origin: str, base: Path | None = None) -> list[Persona]:
    """Validate persona tables: known task and framework, components, a source or documents.

    ``base``: the folder of the file that holds them; a template path is resolved against
    it and must stay inside it (a plugin's tables, with no file, give absolute paths)."""
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{origin}: persona: expected one or more [[persona]] tables")
    out = []
    for i, entry in enumerate(entries):
        key = f"persona[{i}]"
        try:
            persona = msgspec.convert(entry, Persona)
        except msgspec.ValidationError as exc:
            path, reason = explain_validation(str(exc))
            where = key if path == "(top level)" else f"{key}.{path}"
            raise UsageError(f"{origin}: {where}: {reason}") from None
        problem = _problem(persona)
        if problem:
            raise UsageError(f"{origin}: {key}.{problem[0]}: {problem[1]}")
        out.append(_with_template_checked(persona, origin, key, base))
    return out


def _with_template_checked(p: Persona, origin: str, key: str, base: Path | None) -> Persona:
    """The persona with its template path resolved, or an error naming what is wrong with it."""
    template = p.behaviour.template
    where = f"{origin}: {key}.behaviour.template"
    if not template:
        return p
    if not template.endswith(SUFFIX):
        if template not in builtin_names():
            raise UsageError(
                f"{where}: no built-in template {template!r} (a file's name ends in {SUFFIX})"
            )
        return p
    try:
        path = resolve_template(template, base)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    problem = check_template(path, base if base is not None else path.parent)
    if problem:
        raise UsageError(f"{where}: {problem}")
    behaviour = msgspec.structs.replace(p.behaviour, template=str(path))
    return msgspec.structs.replace(p, behaviour=behaviour)


def _problem(p: Persona) -> tuple[str, str] | None:
    if p.framework not in FRAMEWORKS:
        return "framework", f"unknown framework {p.framework!r} (known: {', '.join(FRAMEWORKS)})"
    if p.task not in TASKS:
        return "task", f"unknown task {p.task!r} (known: {', '.join(TASKS)})"
    if not p.name or not all(ch.isalnum() or ch in "_-." for ch in p.name):
        return "name", "letters, digits, '_', '-' and '.' only"
    if len(p.name) > NAME_MAX:
        return "name", f"{len(p.name)} characters; at most {NAME_MAX}"
    if bool(p.source) == bool(p.documents):
        return "source", "give either a corpus source or the persona's own documents"
    if any(not c.strip() for c in p.components):
        return "components", "a component is empty"
    return None


def plugin_personas() -> list[tuple[str, list[Persona]]]:
    """Personas of installed plugins: entry points in the ``prose_sim.personas`` group.

    An entry point names a callable that returns a TOML file or folder path, or a
    list of persona tables (dicts).
    """
    found = []
    for ep in plugins(ENTRY_POINT_GROUP, (), "persona plugin").values():  # by name
        origin = f"plugin {ep.name} ({ep.value})"
        try:
            provided = ep.load()()
        except Exception as exc:  # a broken plugin is named, not a traceback
            raise UsageError(f"{origin}: failed to load: {type(exc).__name__}: {exc}") from None
        if isinstance(provided, (str, Path)):
            personas = load_persona_file(Path(provided))
        else:
            personas = personas_from_dicts(list(provided), origin)
        found.append((origin, personas))
    return found


def catalog_with(files: tuple[str, ...] = ()) -> PersonaCatalog:
    """The built-in personas, installed plugins' and those of ``files`` (paths), in that order.

    A name given twice for one (framework, task) is an error naming both origins. Read
    afresh on every call: a run's catalog is the one its world assembly built.
    """
    base = builtin_catalog()
    personas, origins = list(base), dict(base.origins)
    sources = plugin_personas() + [(path, load_persona_file(Path(path))) for path in files]
    for origin, group in sources:
        for p in group:
            key = (p.framework, p.task, p.name)
            if key in origins:
                raise UsageError(
                    f"{origin}: persona {p.name!r} ({p.framework} {p.task}) is already defined by {origins[key]}"
                )
            origins[key] = origin
            personas.append(p)
    return PersonaCatalog(personas, origins)
