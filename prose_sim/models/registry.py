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
from typing import TYPE_CHECKING, ClassVar

import msgspec

from prose_sim.config.models import ModelSpec
from prose_sim.entry_points import Registry, describe
from prose_sim.errors import UsageError
from prose_sim.models.protocol import Backend, ModelServer

if TYPE_CHECKING:
    from prose_sim.models.backends.pool import PoolMember

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
        self.servers: list[ModelServer] = []  # backends the runner runs for the whole run
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
            assert isinstance(backend, ModelServer), f"{key}: not a ModelServer"
            self.servers.append(backend)
        return backend


class BackendKind:
    """How one backend name builds what serves a role. Subclass it for a plugin."""

    # the Struct of a role's table on this backend: ModelSpec's keys and the kind's own (a
    # plugin with keys of its own subclasses ModelSpec); any other key is an error at load
    spec_type: ClassVar[type[ModelSpec]] = ModelSpec

    # the model name when a role's ``model`` is empty ("" = the backend's name)
    default_model: str = ""
    # the backend can start an answer with the format keyword a prompt asks for
    response_prefix: bool = True
    # every role on it goes through its endpoint's limits and adaptive concurrency cap, even
    # without rpm, tpm or max_concurrency (a remote endpoint)
    limited: bool = False

    def problem(self, spec: ModelSpec) -> tuple[str, str] | None:
        """What is wrong with a role's settings for this backend (a ``spec_type``), as
        (key, reason); checked when the scenario loads."""
        return None

    def check(self, spec: ModelSpec, where: str) -> None:
        """Raise a UsageError for what would fail before the run writes anything (a key
        that is not set); nothing is built."""

    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        """Add what serves ``role`` (the ``model`` it names) to ``parts``, or find it there."""
        raise NotImplementedError


def checked_kind(ep: EntryPoint, loaded: object) -> type[BackendKind]:
    """``loaded`` as a backend kind, or a UsageError naming the entry point."""
    if not (isinstance(loaded, type) and issubclass(loaded, BackendKind)):
        raise UsageError(f"{describe(ep)}: names {loaded!r}, not a subclass of BackendKind")
    spec = loaded.spec_type
    if not (isinstance(spec, type) and issubclass(spec, ModelSpec)):
        raise UsageError(f"{describe(ep)}: its spec_type {spec!r} is not a subclass of ModelSpec")
    return loaded


BACKENDS: Registry[type[BackendKind]] = Registry(
    ENTRY_POINT_GROUP, BUILTIN, "backend", checked_kind
)


def backend_names() -> list[str]:
    """Every backend a scenario may name: the built-in ones and the installed plugins'."""
    return sorted(BACKENDS.names())


def backend_kind(name: str) -> BackendKind:
    """The kind a scenario's ``backend = name`` selects, its module imported now."""
    try:
        return BACKENDS.load(name)()
    except KeyError:
        raise UsageError(BACKENDS.unknown(name)) from None
