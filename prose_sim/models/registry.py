"""Model backends by name: the built-in kinds and those installed packages add.

A scenario names each role's backend (``models.ROLE.backend``); the name selects
a ``BackendKind``, which builds what serves the role. The built-in kinds are
one module each under ``prose_sim.models.kinds``; an installed package adds its
own by naming a ``BackendKind`` subclass in its metadata::

    [project.entry-points."prose_sim.backends"]
    echo = "my_package:EchoKind"

The entry point's name is the backend's name in a scenario. A kind's module is
imported only when a scenario names it, so a base install (no torch, no
openai client) loads and runs the scripted scenarios. A name that no kind has,
a plugin that cannot be imported, and a plugin that takes a built-in's name
are each a one-line UsageError.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

import msgspec

from prose_sim.entry_points import describe, plugins
from prose_sim.errors import UsageError, describe_error
from prose_sim.models.protocol import Backend

if TYPE_CHECKING:
    from prose_sim.models.backends.pool import PoolMember
    from prose_sim.scenario import ModelSpec

ENTRY_POINT_GROUP = "prose_sim.backends"

BUILTIN: dict[str, str] = {
    "scripted": "prose_sim.models.kinds.scripted:ScriptedKind",
    "local": "prose_sim.models.kinds.local:LocalKind",
    "openai": "prose_sim.models.kinds.openai:OpenAIKind",
}


class Served(msgspec.Struct, frozen=True, kw_only=True):
    """What serves one role: the key of its backend in ``Parts.backends``."""

    key: str
    # a pool's members (their keys in Parts.backends): each gets the role's limits, the pool none
    endpoints: list[str] = []


class Parts:
    """The backends a run's roles share, as the kinds build them.

    Roles that should share a backend (one model server, one HTTP client) get
    the same key: a kind looks its key up before building.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency  # the run's episodes in flight (sizes HTTP pools)
        self.backends: dict[str, Backend] = {}
        self.servers: list = []  # backends the runner runs (async context managers) for the run
        self.cache_ids: dict[str, str] = {}  # backends whose answers may be cached, by key
        self.members: dict[str, PoolMember] = {}  # endpoint pools' members, by endpoint key

    def add(
        self, key: str, backend: Backend, *, cache_id: str | None = None, server: bool = False
    ) -> Backend:
        """Keep ``backend`` under ``key``; ``cache_id`` names its answers in the response cache;
        ``server``: the runner enters it for the whole run (a local model server)."""
        self.backends[key] = backend
        if cache_id is not None:
            self.cache_ids[key] = cache_id
        if server:
            self.servers.append(backend)
        return backend


class BackendKind:
    """How one backend name builds what serves a role. Subclass it for a plugin."""

    # the model name when a role's ``model`` is empty ("" = the backend's name)
    default_model: str = ""
    # the backend can start an answer with the format keyword a prompt asks for
    response_prefix: bool = True
    # every role on it goes through its endpoint's limits and adaptive concurrency cap, even
    # without rpm, tpm or max_concurrency (a remote endpoint)
    limited: bool = False

    def problem(self, spec: ModelSpec) -> tuple[str, str] | None:
        """What is wrong with a role's settings for this backend, as (key, reason); checked
        when the scenario loads."""
        return None

    def check(self, spec: ModelSpec, where: str) -> None:
        """Raise a UsageError for what would fail before the run writes anything (a key
        that is not set); nothing is built."""

    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        """Add what serves ``role`` (the ``model`` it names) to ``parts``, or find it there."""
        raise NotImplementedError


def plugin_entry_points() -> dict[str, EntryPoint]:
    """The installed backend plugins by name (not imported)."""
    return plugins(ENTRY_POINT_GROUP, BUILTIN, "backend")


def backend_names() -> list[str]:
    """Every backend a scenario may name: the built-in ones and the installed plugins'."""
    return sorted({*BUILTIN, *plugin_entry_points()})


def backend_kind(name: str) -> BackendKind:
    """The kind a scenario's ``backend = name`` selects, its module imported now."""
    if name in BUILTIN:  # no scan of installed packages for the built-in names
        ep = EntryPoint(name, BUILTIN[name], ENTRY_POINT_GROUP)
    else:
        plugins = plugin_entry_points()
        if name not in plugins:
            raise UsageError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")
        ep = plugins[name]
    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin is named, not a traceback
        raise UsageError(f"{describe(ep)}: failed to load: {describe_error(exc)}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, BackendKind)):
        raise UsageError(f"{describe(ep)}: names {loaded!r}, not a subclass of BackendKind")
    return loaded()
