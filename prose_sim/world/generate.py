"""Generated populations: many distinct personas composed from per-task component pools.

``pools.toml`` holds, for each task, categories of components (structure, figure of
speech, formatting, style, tone, and for emails the opening/closing). A generated
persona holds 1 to ``components`` (at most 4) components, at most one per category,
and no two personas of one population hold the same set of components.

The draw is deterministic for (task, n, components, seed): one ``random.Random``
seeded with ``derive_seed(seed, "generate", task)``; for each persona the number of
components is uniform in 1..components, the categories are drawn without replacement
and then one component per category. A draw that repeats an earlier persona is drawn
again; counts and category sets that are used up are left out of the draw, so that
every n up to the number of distinct personas the pools allow (``max_personas``)
finishes quickly. The first k personas do not depend on n.

``to_toml`` writes a population in the layout of ``personas.toml``.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

import tomli_w

from prose_sim.errors import UsageError
from prose_sim.seeding import derive_seed
from prose_sim.world.personas import builtin_catalog

MAX_COMPONENTS = 4
PERSONA_KEYS = ("framework", "task", "name", "source", "components")

Pools = Mapping[str, Mapping[str, tuple[str, ...]]]


# --- the pools ---------------------------------------------------------------------------


def validate_pools(raw: object, where: str = "pools.toml") -> Pools:
    """Check a decoded pools file; return it as read-only mappings of tuples.

    Every top-level key is a task table; every entry of a task table is a category, a
    non-empty array of distinct non-blank strings; the components of a task are
    distinct across its categories too (so a set of components names its categories).
    """
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: expected one table per task")
    tasks: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for task, categories in raw.items():
        if not isinstance(categories, dict) or not categories:
            raise ValueError(f"{where}: [{task}] must be a non-empty table of categories")
        seen: dict[str, str] = {}
        checked: dict[str, tuple[str, ...]] = {}
        for category, components in categories.items():
            here = f"{where}: {task}.{category}"
            if not isinstance(components, list) or not components:
                raise ValueError(f"{here} must be a non-empty array of strings")
            for component in components:
                if not isinstance(component, str) or not component.strip():
                    raise ValueError(f"{here}: {component!r} is not a non-blank string")
                if component != component.strip():
                    raise ValueError(f"{here}: {component!r} has surrounding whitespace")
                if component in seen:
                    raise ValueError(
                        f"{here}: {component!r} repeats (already in {task}.{seen[component]})"
                    )
                seen[component] = category
            checked[category] = tuple(components)
        tasks[task] = MappingProxyType(checked)
    return MappingProxyType(tasks)


@functools.cache
def load_pools() -> Pools:
    """The bundled component pools (``prose_sim/world/pools.toml``), validated, cached."""
    text = resources.files("prose_sim.world").joinpath("pools.toml").read_text(encoding="utf-8")
    return validate_pools(tomllib.loads(text))


def pool_tasks() -> list[str]:
    """The tasks that have component pools."""
    return list(load_pools())


def _task_pool(task: str) -> Mapping[str, tuple[str, ...]]:
    pools = load_pools()
    if task not in pools:
        raise UsageError(f"no component pools for task {task!r} (known: {', '.join(pools)})")
    return pools[task]


def max_personas(task: str, components: int) -> int:
    """How many distinct personas of 1..components components, one per category, exist."""
    _check_components(components)
    sizes = [len(c) for c in _task_pool(task).values()]
    # elementary symmetric polynomials of the category sizes: e[k] = persona count of k components
    e = [1] + [0] * len(sizes)
    for size in sizes:
        for k in range(len(sizes), 0, -1):
            e[k] += e[k - 1] * size
    return sum(e[1 : components + 1])


# --- generation --------------------------------------------------------------------------


def _check_int(label: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{label} must be an integer, not {value!r}")
    return value


def _check_components(components: object) -> None:
    count = _check_int("components", components)
    if not 1 <= count <= MAX_COMPONENTS:
        raise UsageError(f"components must be between 1 and {MAX_COMPONENTS}, not {components}")


def task_sources(task: str, framework: str = "plume") -> list[str]:
    """The document sources of a task: those of its built-in personas."""
    catalog = builtin_catalog()
    frameworks = list(dict.fromkeys(p.framework for p in catalog))
    if framework not in frameworks:
        raise UsageError(f"unknown framework {framework!r} (known: {', '.join(frameworks)})")
    personas = catalog.for_task(framework, task) or catalog.for_task("plume", task)
    sources = list(dict.fromkeys(p.source for p in personas))
    if not sources:
        raise UsageError(f"task {task!r} has no built-in personas, so no document sources")
    return sources


class _CategorySet:
    """The personas of one set of categories: which component combinations are taken."""

    def __init__(self, sizes: tuple[int, ...]):
        self.sizes = sizes
        self.capacity = 1
        for size in sizes:
            self.capacity *= size
        self.taken: set[tuple[int, ...]] = set()
        self.free: list[tuple[int, ...]] | None = None  # the untaken ones, once half are taken

    @property
    def left(self) -> int:
        return self.capacity - len(self.taken)

    def draw(self, rng: random.Random) -> tuple[int, ...]:
        if self.free is None and 2 * len(self.taken) >= self.capacity:
            self.free = [
                c for c in itertools.product(*map(range, self.sizes)) if c not in self.taken
            ]
        if self.free is not None:  # pick uniformly among the untaken
            j = rng.randrange(len(self.free))
            combo = self.free[j]
            self.free[j] = self.free[-1]
            self.free.pop()
        else:  # fewer than half taken: redraw on a repeat (under 2 tries on average)
            while True:
                combo = tuple(rng.randrange(size) for size in self.sizes)
                if combo not in self.taken:
                    break
        self.taken.add(combo)
        return combo


def generate_personas(
    task: str, n: int, components: int, seed: int, framework: str = "plume"
) -> list[dict]:
    """``n`` distinct personas for ``task``, each of 1..``components`` pool components.

    Each is a dict with exactly the keys of a persona in ``personas.toml``: framework,
    task, name (``gen-{task}-{seed}-{i:05d}``), source (the task's sources in turn) and
    components (in the pool's category order). Raises ``UsageError`` on bad arguments,
    n above ``max_personas(task, components)`` included.
    """
    _check_int("n", n)
    _check_int("seed", seed)
    _check_components(components)
    if not isinstance(task, str):
        raise UsageError(f"task must be a string, not {task!r}")
    pool = _task_pool(task)
    if n < 1:
        raise UsageError(f"n must be at least 1, not {n}")
    categories = list(pool)
    if components > len(categories):
        raise UsageError(
            f"components = {components} exceeds the {len(categories)} categories of {task!r}"
        )
    capacity = max_personas(task, components)
    if n > capacity:
        raise UsageError(
            f"n = {n} exceeds the {capacity} distinct personas that the {task!r} pools allow "
            f"with 1 to {components} component(s)"
        )
    sources = task_sources(task, framework)
    pools = [pool[c] for c in categories]

    rng = random.Random(derive_seed(seed, "generate", task))
    sets: dict[tuple[int, ...], _CategorySet] = {}
    for k in range(1, components + 1):
        for key in itertools.combinations(range(len(categories)), k):
            sets[key] = _CategorySet(tuple(len(pools[i]) for i in key))
    left = dict.fromkeys(range(1, components + 1), 0)  # personas left, by component count
    for key, category_set in sets.items():
        left[len(key)] += category_set.left

    personas = []
    for i in range(n):
        count = rng.choice([k for k in range(1, components + 1) if left[k]])
        while True:  # categories without replacement; a used-up set is drawn again
            key = tuple(sorted(rng.sample(range(len(categories)), count)))
            if sets[key].left:
                break
        combo = sets[key].draw(rng)
        left[count] -= 1
        personas.append(
            {
                "framework": framework,
                "task": task,
                "name": f"gen-{task}-{seed}-{i:05d}",
                "source": sources[i % len(sources)],
                "components": [pools[c][j] for c, j in zip(key, combo, strict=True)],
            }
        )
    return personas


# --- the TOML file -----------------------------------------------------------------------


def _toml_value(value: object) -> str:
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _header(personas: list[dict], components: int | None, seed: int | None) -> str:
    tasks = list(dict.fromkeys(p["task"] for p in personas))
    shown = str(components)
    if components is None:
        shown = f"{max((len(p['components']) for p in personas), default=0)} (the most held)"
    if seed is None and len(tasks) == 1:
        pattern = re.compile(rf"gen-{re.escape(tasks[0])}-(-?\d+)-\d+")
        found = {m.group(1) if (m := pattern.fullmatch(p["name"])) else None for p in personas}
        if len(found) == 1 and None not in found:
            seed = int(str(found.pop()))  # the one value, not None
    return (
        "# Generated personas (prose_sim.world.generate.generate_personas):\n"
        f"# task = {', '.join(tasks) or '-'}, n = {len(personas)}, components = {shown}, "
        f"seed = {'unknown' if seed is None else seed}\n"
        "# Each persona holds 1 to `components` components from the task's pools\n"
        "# (prose_sim/world/pools.toml), at most one per category; no two hold the same set.\n"
    )


def to_toml(personas: list[dict], *, components: int | None = None, seed: int | None = None) -> str:
    """The text of a persona file (``[[persona]]`` tables, as in ``personas.toml``).

    The header comment says how the population was generated: task and n from the
    personas; ``components`` and ``seed`` as given, else the largest component count
    held and the seed read back from the generated names.
    """
    for p in personas:
        if not isinstance(p, Mapping) or set(p) != set(PERSONA_KEYS):
            got = sorted(p) if isinstance(p, Mapping) else type(p).__name__
            raise ValueError(f"a persona needs exactly the keys {list(PERSONA_KEYS)}, got {got}")
    blocks = [_header(personas, components, seed)]
    if not personas:  # no tables: say so, so the file still holds the key
        blocks.append("persona = []\n")
    for p in personas:
        lines = ["[[persona]]"]
        for key in PERSONA_KEYS[:-1]:
            lines.append(f"{key} = {_toml_value(p[key])}")
        items = ", ".join(_toml_value(c) for c in p["components"])
        lines.append(f"components = [{items}]")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
