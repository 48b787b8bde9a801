"""Installed plugins: the entry points of one group, by name, and how errors name them.

Methods (``prose_sim.methods``), backends (``prose_sim.backends``) and personas
register the same way; this module reads a group's entry points without
importing them, so a plugin costs nothing until a scenario names it.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.metadata import EntryPoint, entry_points

from prose_sim.errors import UsageError


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
