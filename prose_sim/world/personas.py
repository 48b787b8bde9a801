"""The persona catalog: simulated users with hidden writing preferences.

The built-in catalog (``personas.toml``) holds the paper's 9 PLUME and 9
PRELUDE users. A persona is identified by (framework, task, name).
"""

from __future__ import annotations

import functools
from importlib import resources

import msgspec


class Persona(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    framework: str
    task: str
    name: str
    source: str
    components: list[str]

    @property
    def preferences(self) -> str:
        """The true preferences as one string, components joined by '; '."""
        return "; ".join(self.components)


class _CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    persona: list[Persona]


class PersonaCatalog:
    """Look-ups over a list of personas."""

    def __init__(self, personas: list[Persona]):
        self._by_key = {(p.framework, p.task, p.name): p for p in personas}
        if len(self._by_key) != len(personas):
            raise ValueError("persona catalog has duplicate (framework, task, name)")

    def get(self, framework: str, task: str, name: str) -> Persona:
        return self._by_key[(framework, task, name)]

    def names(self, framework: str, task: str) -> list[str]:
        return [n for (f, t, n) in self._by_key if f == framework and t == task]

    def for_task(self, framework: str, task: str) -> list[Persona]:
        return [self.get(framework, task, n) for n in self.names(framework, task)]

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


@functools.cache
def builtin_catalog() -> PersonaCatalog:
    data = resources.files("prose_sim.world").joinpath("personas.toml").read_bytes()
    return PersonaCatalog(msgspec.toml.decode(data, type=_CatalogFile).persona)
