"""The methods by name: the built-in ones and those of the ``prose_sim.methods`` group.

A package adds a method by naming an ``Inferrer`` subclass in its metadata::

    [project.entry-points."prose_sim.methods"]
    frequent = "my_package:Frequent"

The entry point's name is the method's name in a scenario. Plugins are found by
name without importing them; one is imported only when a scenario (or
``methods list``) asks for it, and a plugin that cannot be imported, that names
something other than an ``Inferrer`` subclass, or whose ``settings_type`` is not
a ``MethodSettings`` Struct, is a one-line error naming the entry point.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.config.methods import MethodSettings
from prose_sim.entry_points import Registry, describe
from prose_sim.errors import UsageError

ENTRY_POINT_GROUP = "prose_sim.methods"

_HERE = "prose_sim.actors.inferrers"
BUILTIN: dict[str, str] = {
    "no_learning": f"{_HERE}.simple:NoLearning",
    "oracle": f"{_HERE}.simple:Oracle",
    "cipher1": f"{_HERE}.cipher:Cipher1",
    "cipherN": f"{_HERE}.cipher:CipherN",
    "icl": f"{_HERE}.icl:Icl",
    "prose": f"{_HERE}.prose:Prose",
    "icl+prose": f"{_HERE}.prose:IclProse",
    "fixed_subset": f"{_HERE}.fixed_subset:FixedSubset",
}


def checked_method(ep: EntryPoint, loaded: object) -> type[Inferrer]:
    """``loaded`` as an inferrer class, or a UsageError naming the entry point."""
    if not (isinstance(loaded, type) and issubclass(loaded, Inferrer)):
        raise UsageError(
            f"{describe(ep)}: names {loaded!r}, not a subclass of prose_sim's Inferrer"
        )
    settings = loaded.settings_type
    if not (isinstance(settings, type) and issubclass(settings, MethodSettings)):
        raise UsageError(
            f"{describe(ep)}: its settings_type {settings!r} is not a subclass of MethodSettings"
        )
    return loaded


METHODS: Registry[type[Inferrer]] = Registry(ENTRY_POINT_GROUP, BUILTIN, "method", checked_method)
