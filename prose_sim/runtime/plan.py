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

from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.scenario import Scenario


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


def expand(scenario: Scenario) -> list[EpisodePlan]:
    plans = []
    for task, spec in scenario.tasks.items():
        for framework in spec.frameworks:
            for label in scenario.methods:
                for seed in scenario.seeds:
                    if scenario.methods[label].retrieval_mode != "exact_match":
                        plans.append(
                            EpisodePlan(
                                episode_id=episode_id(task, framework, label, seed, ALL_USERS),
                                task=task,
                                framework=framework,
                                method_label=label,
                                method=scenario.method_of(label),
                                settings=scenario.methods[label],
                                seed=seed,
                                personas=list(spec.personas or []),
                            )
                        )
                        continue
                    for persona in spec.personas or []:
                        plans.append(
                            EpisodePlan(
                                episode_id=episode_id(task, framework, label, seed, persona),
                                task=task,
                                framework=framework,
                                method_label=label,
                                method=scenario.method_of(label),
                                settings=scenario.methods[label],
                                seed=seed,
                                personas=[persona],
                            )
                        )
    return plans
