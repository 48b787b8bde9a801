"""Preference inference methods, one file each, registered by name.

``BUILTIN`` names the built-in methods' classes (imported when a scenario names
one); installed packages add theirs through the ``prose_sim.methods`` entry-point
group (``plugins.py``). ``method_class`` and ``method_names`` see both. A method
declares itself on its class (``Inferrer``): its settings Struct, its checks, the
episodes it expands into and the calls it is expected to make.
"""

from __future__ import annotations

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.actors.inferrers.plugins import METHODS
from prose_sim.config.methods import MethodSettings

__all__ = [
    "METHODS",
    "check_settings",
    "method_class",
    "method_names",
    "method_origins",
    "unknown_method",
]


def method_names() -> list[str]:
    """Every method a scenario may name: the built-in ones, then the installed plugins'."""
    return METHODS.names()


def method_class(name: str) -> type[Inferrer]:
    """The inferrer class of a method, imported on first use.

    Raises KeyError for a name no built-in or plugin has, UsageError for a plugin
    that cannot be loaded.
    """
    return METHODS.load(name)


def method_origins() -> list[tuple[str, str, type[Inferrer]]]:
    """(name, origin, class) of every method: "built-in", or the plugin's distribution.
    Imports every method."""
    return [(name, METHODS.origin(name), method_class(name)) for name in METHODS.names()]


def unknown_method(method: str) -> str:
    """The reason given for a method name that no built-in or plugin has."""
    return METHODS.unknown(method)


def check_settings(method: str, settings: MethodSettings) -> tuple[str, str] | None:
    """(knob, reason) for the first setting the method does not take, else None."""
    cls = method_class(method)
    for knob in sorted(settings.given()):
        if knob not in cls.allowed_knobs():
            return knob, f"not a setting of method {method!r}"
    return cls.check(settings)
