"""Inference methods from installed packages: the ``prose_sim.methods`` entry-point group.

A package adds a method by naming an ``Inferrer`` subclass in its metadata::

    [project.entry-points."prose_sim.methods"]
    frequent = "my_package:Frequent"

The entry point's name is the method's name in a scenario. Plugins are found by
name without importing them; one is imported only when a scenario (or
``methods list``) asks for it, and a plugin that cannot be imported, or that
names something other than an ``Inferrer`` subclass, is a one-line error naming
the entry point.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.entry_points import describe, distribution, plugins
from prose_sim.errors import UsageError, describe_error

ENTRY_POINT_GROUP = "prose_sim.methods"
__all__ = ["ENTRY_POINT_GROUP", "distribution", "load_method", "plugin_entry_points"]


def plugin_entry_points(builtin: frozenset[str] | set[str]) -> dict[str, EntryPoint]:
    """The installed method plugins by name (not imported)."""
    return plugins(ENTRY_POINT_GROUP, builtin, "method")


def load_method(ep: EntryPoint) -> type[Inferrer]:
    """Import the plugin's class and check that it is an inferrer with known knobs."""
    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin is named, not a traceback
        raise UsageError(f"{describe(ep)}: failed to load: {describe_error(exc)}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Inferrer)):
        raise UsageError(
            f"{describe(ep)}: names {loaded!r}, not a subclass of prose_sim's Inferrer"
        )
    unknown = sorted(set(loaded.allowed_knobs()) - set(MethodSettings.__struct_fields__))
    if unknown:
        raise UsageError(f"{describe(ep)}: knobs {', '.join(unknown)} are not method settings")
    return loaded
