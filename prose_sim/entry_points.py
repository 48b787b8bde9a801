"""Installed plugins: the entry points of one group, by name, and how errors name them.

Methods (``prose_sim.methods``), backends (``prose_sim.backends``) and personas
(``prose_sim.personas``) register the same way; this module reads a group's entry
points without importing them, so a plugin costs nothing until a scenario names
it. A ``Registry`` holds one kind's built-in names and plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from prose_sim.errors import UsageError, describe_error

T = TypeVar("T")


def distribution(ep: EntryPoint) -> str:
    """The installed distribution that declares the entry point ("name version")."""
    return f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else ep.value


def describe(ep: EntryPoint) -> str:
    """How an error names an entry point: name, target, distribution and group."""
    dist = f", from {distribution(ep)}" if ep.dist is not None else ""
    return f"entry point {ep.name!r} ({ep.value}{dist}) in group {ep.group}"


def plugins(group: str, builtin: Collection[str], what: str) -> dict[str, EntryPoint]:
    """The group's entry points by name (not imported). A name that is a built-in
    ``what``'s, or that two distributions declare, is an error."""
    found: dict[str, EntryPoint] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        if ep.name in builtin:
            raise UsageError(f"{describe(ep)}: {ep.name!r} is the name of a built-in {what}")
        if ep.name in found and found[ep.name].value != ep.value:
            raise UsageError(
                f"{describe(ep)}: {what} {ep.name!r} is also declared by {describe(found[ep.name])}"
            )
        found[ep.name] = ep
    return found


class Registry(Generic[T]):
    """Things of one kind by name: the built-in ones and an entry-point group's.

    Built-in ones are named by ``"module:attribute"`` strings, so nothing is
    imported until a name is asked for; ``check`` turns what an entry point (or a
    built-in's string) loads into a ``T`` or raises a ``UsageError`` naming it.
    Methods, backends and personas each have one.
    """

    def __init__(
        self,
        group: str,
        builtin: Mapping[str, str],
        what: str,
        check: Callable[[EntryPoint, object], T],
    ) -> None:
        self.group = group
        self.builtin = dict(builtin)
        self.what = what
        self._check = check
        self._loaded: dict[tuple[str, str], T] = {}  # (name, target) -> loaded, once per process

    def plugins(self) -> dict[str, EntryPoint]:
        """The installed plugins by name (not imported)."""
        return plugins(self.group, self.builtin, self.what)

    def names(self) -> list[str]:
        """The built-in names, then the installed plugins'."""
        return [*self.builtin, *self.plugins()]

    def entry_point(self, name: str) -> EntryPoint:
        """The entry point behind ``name`` (KeyError for a name no built-in or plugin has)."""
        if name in self.builtin:  # no scan of installed packages for a built-in name
            return EntryPoint(name, self.builtin[name], self.group)
        found = self.plugins()
        if name not in found:
            raise KeyError(name)
        return found[name]

    def load(self, name: str) -> T:
        """What ``name`` names, imported on first use: KeyError for an unknown name, a
        UsageError naming the entry point for one that cannot be loaded."""
        target = self.builtin.get(name)
        if target is not None and (name, target) in self._loaded:  # each episode asks
            return self._loaded[name, target]
        ep = self.entry_point(name)
        key = (name, ep.value)
        if key not in self._loaded:
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin is named, not a traceback
                raise UsageError(f"{describe(ep)}: failed to load: {describe_error(exc)}") from None
            self._loaded[key] = self._check(ep, loaded)
        return self._loaded[key]

    def origin(self, name: str) -> str:
        """ "built-in", or "plugin" and the distribution that declares it."""
        if name in self.builtin:
            return "built-in"
        return f"plugin {distribution(self.entry_point(name))}"

    def unknown(self, name: str) -> str:
        """The reason given for a name that no built-in or plugin has."""
        return f"unknown {self.what} {name!r} (known: {', '.join(sorted(self.names()))})"
