"""Prompt templates: jinja2 files in the top-level ``prompts/`` folder, and the user's own.

One lookup for both layouts: an installed wheel carries the folder as
``prose_sim/prompts/`` (pyproject's force-include), a source checkout (an
editable install, or ``PYTHONPATH`` at the repository) reads the repository's
``prompts/`` beside the package. A folder counts only if it holds the
templates, so a stray ``prompts/`` beside an installed package is never read.

Templates a scenario or a persona names (a persona's ``behaviour.template``,
the scenario's ``[prompts] dir``) are user input, possibly from a run folder
someone sent: they are rendered in jinja2's ``ImmutableSandboxedEnvironment``
(no attribute that reaches Python's internals, no environment variables, no
module), from a loader confined to their folder (no ``..``, no link out of
it), and checked when the scenario loads (``check_template``). The built-in
prompts are the package's own and render in a plain environment.

A scenario's prompt folder overrides built-in templates by name for the run
that uses it: the runner activates it around the run (``using_prompts``), so
every ``render`` of that run, whichever actor calls it, sees the same folder.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import re
import secrets
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

_PACKAGE = Path(__file__).resolve().parent
_PROBE = "draft.j2"  # a template every layout has
SUFFIX = ".j2"


def template_dir(package: Path = _PACKAGE) -> Path:
    """The folder of the prompt templates for the package at ``package``."""
    candidates = (package / "prompts", package.parent / "prompts")  # a wheel's, a checkout's
    for candidate in candidates:
        if (candidate / _PROBE).is_file():
            return candidate
    raise FileNotFoundError(
        f"prompt templates not found: neither {candidates[0]} (an installed wheel) nor "
        f"{candidates[1]} (a source checkout) holds {_PROBE}"
    )


def builtin_names() -> list[str]:
    """The names of the built-in templates (``draft``, ``judge_ppcm``, ...)."""
    return sorted(p.name.removesuffix(SUFFIX) for p in template_dir().glob(f"*{SUFFIX}"))


@functools.cache
def environment() -> jinja2.Environment:
    return _environment(str(template_dir()))


_OPTIONS: dict[str, object] = dict(
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    autoescape=False,
)


def _environment(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        auto_reload=False,  # templates do not change during a run: no stat() per render
        **_OPTIONS,  # type: ignore[arg-type]
    )
    env.filters["best_first"] = best_first
    return env


class ConfinedLoader(jinja2.FileSystemLoader):
    """A ``FileSystemLoader`` that also refuses a file whose real path leaves its folder
    (a symbolic link out of it); ``..`` in a name is refused by jinja2 itself."""

    def __init__(self, folder: str):
        super().__init__(folder, followlinks=False)
        self.root = Path(folder).resolve()

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.root):
            raise jinja2.TemplateNotFound(f"{template} (outside {self.root})")
        return source, filename, uptodate


@functools.cache
def sandboxed_environment(folder: str) -> jinja2.Environment:
    """The sandbox that renders the templates of a user's folder (one per folder)."""
    env = ImmutableSandboxedEnvironment(
        loader=ConfinedLoader(folder),
        auto_reload=True,  # a user's file may change between two runs of one process
        **_OPTIONS,
    )
    env.filters["best_first"] = best_first
    return env


def best_first(scale: dict[str, int]) -> list[str]:
    """A verdict scale's keywords from the highest score to the lowest."""
    return _best_first(tuple(scale.items()))


@functools.lru_cache(maxsize=64)  # a handful of scales, rendered thousands of times
def _best_first(items: tuple[tuple[str, int], ...]) -> list[str]:
    return [keyword for keyword, _ in sorted(items, key=lambda item: item[1], reverse=True)]


# --- the prompt folder of a run ------------------------------------------------------

# the resolved ``[prompts] dir`` of the run being executed ("" = none); set by ``using_prompts``
_PROMPT_DIR: contextvars.ContextVar[str] = contextvars.ContextVar("prompt_dir", default="")


@contextlib.contextmanager
def using_prompts(folder: str) -> Iterator[None]:
    """Render this block's templates (and the tasks it starts) from ``folder`` first."""
    token = _PROMPT_DIR.set(str(Path(folder).resolve()) if folder else "")
    try:
        yield
    finally:
        _PROMPT_DIR.reset(token)


def render(name: str, **context: object) -> str:
    """Render ``prompts/<name>.j2`` (or the run's prompt folder's) with the given context."""
    folder = _PROMPT_DIR.get()
    if folder and (Path(folder) / f"{name}{SUFFIX}").is_file():
        return (
            sandboxed_environment(folder).get_template(f"{name}{SUFFIX}").render(**context).strip()
        )
    return _template(name).render(**context).strip()


def renders_builtin(template: str) -> bool:
    """Whether ``template`` (a name or a ``.j2`` path, as ``render_template`` takes it) renders
    from the built-in templates: a name, with no run prompt folder in use. Only those are
    rendered once per distinct context: a user's files may change between two runs of one
    process."""
    return not template.endswith(SUFFIX) and not _PROMPT_DIR.get()


def render_repeated(name: str, **context: Hashable) -> str:
    """``render`` for a template whose context repeats (the system messages, a task prompt
    that recurs in every seed): a built-in template is rendered once per distinct context.
    A run's prompt folder is rendered each time (its files may change between two runs of
    one process)."""
    if not renders_builtin(name):
        return render(name, **context)
    return _rendered(name, tuple(context.items()))


@functools.lru_cache(maxsize=1024)
def _rendered(name: str, context: tuple[tuple[str, Hashable], ...]) -> str:
    return _template(name).render(**dict(context)).strip()


def render_filled(name: str, texts: Mapping[str, str], **context: object) -> str:
    """``render(name, **context, **texts)`` for a prompt around long texts that never repeat
    (a judged draft, a description to compare): a built-in template that writes each of
    ``texts`` out as it is (a plain ``{{ text }}``: no filter, test, condition or assignment
    on it) is rendered once per distinct ``context``, with a marker in each text's place,
    and the texts are put where the markers are. Concatenation is all the template does
    with such a value, so the prompt is the same string (a test holds the two equal).

    Any other template (one that does more with a text, or one of a run's prompt folder)
    is rendered as ``render`` renders it."""
    if renders_builtin(name):
        pieces = _pieces(name, tuple(texts), _Context(context))
        if pieces is not None:  # text, name of a hole, text, ... (the holes at odd places)
            return "".join([texts[p] if i % 2 else p for i, p in enumerate(pieces)]).strip()
    return render(name, **context, **texts)


_MARK = f"\x00{secrets.token_hex(8)}:"  # a hole's marker: _MARK, its name, NUL
_MARKS = re.compile(re.escape(_MARK) + "([^\x00]*)\x00")


class _Context:
    """A render's context as a cache key: a list or a dict compared by its items (a
    persona's components, a verdict scale), the values themselves kept for the render."""

    __slots__ = ("_key", "values")

    def __init__(self, values: dict[str, object]):
        self.values = values
        self._key = tuple(  # a list, not a generator: a tenth faster
            [
                (k, tuple(v) if type(v) is list else tuple(v.items()) if type(v) is dict else v)
                for k, v in values.items()
            ]
        )

    def __hash__(self) -> int:
        return hash(self._key)  # a value holding something unhashable: TypeError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Context) and self._key == other._key


@functools.lru_cache(maxsize=4096)  # judge prompts: one per task and component or persona
def _pieces(name: str, holes: tuple[str, ...], context: _Context) -> tuple[str, ...] | None:
    """The template rendered around markers, split at them; None where it does more with a
    hole than write it out (``_written_plainly``)."""
    if not _written_plainly(name, frozenset(holes)):
        return None
    marked = _template(name).render(**context.values, **{h: f"{_MARK}{h}\x00" for h in holes})
    pieces = tuple(_MARKS.split(marked))
    if _MARK in "".join(pieces[::2]):  # cannot be: the marker is this process's secret
        raise AssertionError(f"template {name}: a hole's marker was altered")
    return pieces


_OPAQUE = (  # what could do more with a value than write it out
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.Include,
    nodes.Extends,
    nodes.Import,
    nodes.FromImport,
    nodes.Block,
)


@functools.lru_cache(maxsize=64)
def _written_plainly(name: str, holes: frozenset[str]) -> bool:
    """Whether the built-in template ``name`` does nothing with the ``holes`` variables but
    write them out: each use a plain ``{{ name }}`` of an output, and nothing (a macro, an
    include, a block) that could take a rendered piece further."""
    env = environment()
    source, _, _ = env.loader.get_source(env, f"{name}{SUFFIX}")  # type: ignore[union-attr]
    return writes_plainly(env.parse(source), holes)


def writes_plainly(tree: nodes.Template, holes: frozenset[str]) -> bool:
    """``_written_plainly`` of a parsed template."""
    if any(True for _ in tree.find_all(_OPAQUE)):
        return False
    plain = {
        id(node)
        for output in tree.find_all(nodes.Output)
        for node in output.nodes
        if isinstance(node, nodes.Name) and node.name in holes
    }
    return all(id(node) in plain for node in tree.find_all(nodes.Name) if node.name in holes)


@functools.cache
def _template(name: str) -> jinja2.Template:
    template = environment().get_template(f"{name}{SUFFIX}")
    # jinja2 copies a template's globals into every render's context; as loaded they are a
    # ChainMap over the environment's, several times slower to copy than the same in a dict
    template.globals = dict(template.globals)
    return template


def render_template(template: str, **context: object) -> str:
    """Render a template by name (``prompts/<name>.j2``) or by path (a ``.j2`` file, sandboxed
    and confined to its folder; ``check_template`` resolved and checked it at load)."""
    if not template.endswith(SUFFIX):
        return render(template, **context)
    path = Path(template)
    env = sandboxed_environment(str(path.parent))
    return env.get_template(path.name).render(**context).strip()


# --- checks at load ----------------------------------------------------------------------


def resolve_template(template: str, base: Path | None) -> Path:
    """A template path as given (relative to ``base``, the folder of the file naming it)."""
    path = Path(template).expanduser()
    if not path.is_absolute():
        if base is None:
            raise ValueError(f"{template!r}: give an absolute path (no file names it)")
        path = base / path
    return Path(path.resolve())


def check_template(path: Path, root: Path) -> str:
    """Why the template at ``path`` cannot be used ("" when it can): it must be a file
    inside ``root`` (the folder of the file that names it) that compiles in the sandbox."""
    root = root.resolve()
    if not path.resolve().is_relative_to(root):
        return f"{path} is outside {root} (a template must be in the folder of the file naming it)"
    if not path.is_file():
        return f"no such template file {str(path)!r}"
    try:
        source = path.read_text(encoding="utf-8")
        sandboxed_environment(str(path.parent)).parse(source, path.name, str(path))
    except jinja2.TemplateSyntaxError as exc:
        return f"{path}:{exc.lineno}: template syntax error: {exc.message}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"{path}: cannot read: {exc}"
    return ""


def file_hash(path: Path) -> str:
    """A short hash of a template file's bytes (recorded in the run's log)."""
    return hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()


def prompt_folder_templates(folder: Path) -> dict[str, Path]:
    """The templates of a prompt folder by name: those named after a built-in override it,
    those whose name starts with ``_`` are parts the others include."""
    return {p.name.removesuffix(SUFFIX): p for p in sorted(folder.glob(f"*{SUFFIX}"))}


def check_prompt_folder(folder: Path) -> str:
    """Why a ``[prompts] dir`` cannot be used ("" when it can): a folder whose every
    ``.j2`` file is named after a built-in template and compiles in the sandbox."""
    if not folder.is_dir():
        return f"no such folder {str(folder)!r}"
    known = set(builtin_names())
    found = prompt_folder_templates(folder)
    if not found:
        return f"{folder} holds no {SUFFIX} template"
    for name, path in found.items():
        if name not in known and not name.startswith("_"):
            return (
                f"{path.name}: no built-in template is named {name!r} "
                f"(known: {', '.join(sorted(known))}; a part others include starts with '_')"
            )
        problem = check_template(path, folder)
        if problem:
            return problem
    return ""
