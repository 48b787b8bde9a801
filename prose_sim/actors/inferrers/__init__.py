"""Preference inference methods, one file each, registered by name.

``METHODS`` holds the built-in methods; installed packages add theirs through
the ``prose_sim.methods`` entry-point group (``plugins.py``), imported only when
a scenario names one. ``method_class`` and ``method_names`` see both.
"""

from __future__ import annotations

from prose_sim.actors.inferrers.base import Inferrer
from prose_sim.actors.inferrers.cipher import Cipher1, CipherN
from prose_sim.actors.inferrers.fixed_subset import FixedSubset
from prose_sim.actors.inferrers.icl import Icl
from prose_sim.actors.inferrers.plugins import distribution, load_method, plugin_entry_points
from prose_sim.actors.inferrers.prose import IclProse, Prose
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.actors.inferrers.simple import NoLearning, Oracle

METHODS: dict[str, type[Inferrer]] = {
    "no_learning": NoLearning,
    "oracle": Oracle,
    "cipher1": Cipher1,
    "cipherN": CipherN,
    "icl": Icl,
    "prose": Prose,
    "icl+prose": IclProse,
    "fixed_subset": FixedSubset,
}

# plugin methods imported so far (a plugin is imported once per process)
_LOADED: dict[str, type[Inferrer]] = {}


def method_names() -> list[str]:
    """Every method a scenario may name: the built-in ones, then the installed plugins'."""
    return [*METHODS, *plugin_entry_points(set(METHODS))]


def method_class(name: str) -> type[Inferrer]:
    """The inferrer class of a method; a plugin's is imported on first use.

    Raises KeyError for a name no built-in or plugin has, UsageError for a plugin
    that cannot be loaded.
    """
    if name in METHODS:
        return METHODS[name]
    if name not in _LOADED:
        plugins = plugin_entry_points(set(METHODS))
        if name not in plugins:
            raise KeyError(name)
        _LOADED[name] = load_method(plugins[name])
    return _LOADED[name]


def method_origins() -> list[tuple[str, str, type[Inferrer]]]:
    """(name, origin, class) of every method: "built-in", or the plugin's distribution.
    Imports every plugin."""
    plugins = plugin_entry_points(set(METHODS))
    builtin = [(name, "built-in", cls) for name, cls in METHODS.items()]
    return builtin + [
        (name, f"plugin {distribution(ep)}", method_class(name)) for name, ep in plugins.items()
    ]


def unknown_method(method: str) -> str:
    """The reason given for a method name that no built-in or plugin has."""
    return f"unknown method {method!r} (known: {', '.join(sorted(method_names()))})"


def check_settings(method: str, settings: MethodSettings) -> tuple[str, str] | None:
    """(knob, reason) for the first setting the method does not take, else None."""
    cls = method_class(method)
    for knob in sorted(settings.given()):
        if knob not in cls.allowed_knobs():
            return knob, f"not a setting of method {method!r}"
    check = getattr(cls, "check", None)
    return check(settings) if check else None
