"""Expanding a scenario into episodes (design brief, section 4).

With exact-match retrieval (the paper's default) an agent's memory is
partitioned by user, so each (task, framework, method, seed) splits into one
episode per user, and those run concurrently.
"""

from __future__ import annotations

import msgspec

from prose_sim.scenario import Scenario


class EpisodePlan(msgspec.Struct, frozen=True):
    episode_id: str
    task: str
    framework: str
    method_label: str
    method: str
    seed: int
    personas: list[str]  # in the order their instances run


def episode_id(task: str, framework: str, method_label: str, seed: int, persona: str) -> str:
    return f"{task}/{framework}/{method_label}/{seed}/{persona}"


def expand(scenario: Scenario) -> list[EpisodePlan]:
    plans = []
    for task, spec in scenario.tasks.items():
        for framework in spec.frameworks:
            for label in scenario.methods:
                for seed in scenario.seeds:
                    for persona in spec.personas or []:
                        plans.append(
                            EpisodePlan(
                                episode_id=episode_id(task, framework, label, seed, persona),
                                task=task,
                                framework=framework,
                                method_label=label,
                                method=scenario.method_of(label),
                                seed=seed,
                                personas=[persona],
                            )
                        )
    return plans
