"""Expanding a scenario into episodes (design brief, section 4).

With exact-match retrieval (the paper's default) an agent's memory is
partitioned by user, so each (task, framework, method, seed) splits into one
episode per user, and those run concurrently. With the other retrieval modes
the agent may draw on any user's history, so one episode spans all users of
that (task, framework, method, seed), their instances in the seed's shuffled
order.
"""

from __future__ import annotations

import msgspec

from prose_sim.actors.inferrers import method_class
from prose_sim.config import Scenario
from prose_sim.config.methods import MethodSettings
from prose_sim.world.assembly import scenario_catalog
from prose_sim.world.personas import PersonaCatalog

ALL_USERS = "all-users"


class EpisodePlan(msgspec.Struct, frozen=True):
    episode_id: str
    task: str
    framework: str
    method_label: str
    method: str
    settings: MethodSettings
    seed: int
    personas: list[str]  # one user, or all users of the task (instances interleaved)


def episode_id(task: str, framework: str, method_label: str, seed: int, persona: str) -> str:
    return f"{task}/{framework}/{method_label}/{seed}/{persona}"


def _variants(
    scenario: Scenario,
    label: str,
    settings: MethodSettings,
    framework: str,
    task: str,
    user: str,
    catalog: PersonaCatalog,
) -> list[tuple[str, MethodSettings]]:
    """(label, settings) of one user's episodes of a method: one, or one per subset of the
    user's components for a method that runs subsets (fixed_subset's powerset)."""
    cls = method_class(scenario.method_of(label))
    return cls.episodes(label, settings, len(catalog.get(framework, task, user).components))


def expand(scenario: Scenario, catalog: PersonaCatalog | None = None) -> list[EpisodePlan]:
    """A checked scenario's episodes in the grid's fixed order.

    ``catalog``: the run's personas (default: the scenario's, built when a method
    runs subsets of a user's components and so needs their count)."""
    plans = []
    for task, spec in scenario.tasks.items():
        for framework in spec.frameworks:
            for label, settings in scenario.methods.items():
                users = list(spec.personas or [])
                method = scenario.method_of(label)
                runs_subsets = method_class(method).expands_per_user
                # exact match (and a method that runs subsets of a user's components): one
                # episode per user; otherwise one over all users
                per_user = runs_subsets or settings.retrieval_mode == "exact_match"
                subset_catalog = None  # set for a method that runs subsets
                if runs_subsets:
                    catalog = catalog or scenario_catalog(scenario)
                    subset_catalog = catalog
                groups = [[u] for u in users] if per_user else [users]
                for seed in scenario.seeds:
                    for personas in groups:
                        who = personas[0] if per_user else ALL_USERS
                        variants = (
                            _variants(
                                scenario, label, settings, framework, task, who, subset_catalog
                            )
                            if subset_catalog is not None
                            else [(label, settings)]
                        )
                        for variant_label, variant in variants:
                            plans.append(
                                EpisodePlan(
                                    episode_id=episode_id(
                                        task, framework, variant_label, seed, who
                                    ),
                                    task=task,
                                    framework=framework,
                                    method_label=variant_label,
                                    method=method,
                                    settings=variant,
                                    seed=seed,
                                    personas=personas,
                                )
                            )
    return plans


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), with 1 <= K <= N."""
    from prose_sim.errors import UsageError

    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = None
    if not sep or shard is None or not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/3")
    return shard


def select_shard(plans: list[EpisodePlan], shard: tuple[int, int] | None) -> list[EpisodePlan]:
    """Shard K of N: every N-th episode of the grid's fixed order, starting at the K-th.

    The shards of one N are disjoint and together cover the grid, whatever
    machine runs them.
    """
    if shard is None:
        return plans
    k, n = shard
    return [plan for i, plan in enumerate(plans) if i % n == k - 1]
