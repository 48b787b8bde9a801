"""Prompt templates: jinja2 files in the top-level ``prompts/`` folder.

One lookup for both layouts: an installed wheel carries the folder as
``prose_sim/prompts/`` (pyproject's force-include), a source checkout (an
editable install, or ``PYTHONPATH`` at the repository) reads the repository's
``prompts/`` beside the package. A folder counts only if it holds the
templates, so a stray ``prompts/`` beside an installed package is never read.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).resolve().parent
_PROBE = "draft.j2"  # a template every layout has


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


@functools.cache
def environment() -> jinja2.Environment:
    return _environment(str(template_dir()))


def _environment(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
        auto_reload=False,  # templates do not change during a run: no stat() per render
    )
    env.filters["best_first"] = best_first
    return env


def best_first(scale: dict[str, int]) -> list[str]:
    """A verdict scale's keywords from the highest score to the lowest."""
    return _best_first(tuple(scale.items()))


@functools.lru_cache(maxsize=64)  # a handful of scales, rendered thousands of times
def _best_first(items: tuple[tuple[str, int], ...]) -> list[str]:
    return [keyword for keyword, _ in sorted(items, key=lambda item: item[1], reverse=True)]


def render(name: str, **context: object) -> str:
    """Render ``prompts/<name>.j2`` with the given context."""
    return _template(name).render(**context).strip()


@functools.cache
def _template(name: str) -> jinja2.Template:
    return environment().get_template(f"{name}.j2")


@functools.cache
def _file_environment(folder: str) -> jinja2.Environment:
    return _environment(folder)


def render_template(template: str, **context: object) -> str:
    """Render a template by name (``prompts/<name>.j2``) or by path (a ``.j2`` file)."""
    if not template.endswith(".j2"):
        return render(template, **context)
    path = Path(template).resolve()
    return _file_environment(str(path.parent)).get_template(path.name).render(**context).strip()
