"""Scenarios: reading files into the schema (``prose_sim.config``), ``loading``.

The names most callers want are re-exported here; the world a scenario runs in
(personas, corpus, the checks against them) is assembled by
``prose_sim.world.assembly``, whose look-ups are re-exported too.
"""

from prose_sim.config import Models, ModelSpec, Scenario, TaskSpec
from prose_sim.errors import ScenarioError
from prose_sim.scenario.loading import (
    GENERATION_PRESETS,
    apply_generation_presets,
    apply_override,
    dump_scenario,
    generation_preset,
    load_run,
    load_scenario,
    parse_scenario,
    read_toml,
    run_from_dict,
    scenario_from_dict,
)
from prose_sim.world.assembly import (
    ResolvedRun,
    assemble,
    persona_sources,
    personas_digest,
    scenario_catalog,
    scenario_corpus,
    scenario_personas,
)

__all__ = [
    "GENERATION_PRESETS",
    "ModelSpec",
    "Models",
    "ResolvedRun",
    "Scenario",
    "ScenarioError",
    "TaskSpec",
    "apply_generation_presets",
    "apply_override",
    "assemble",
    "dump_scenario",
    "generation_preset",
    "load_run",
    "load_scenario",
    "parse_scenario",
    "persona_sources",
    "personas_digest",
    "read_toml",
    "run_from_dict",
    "scenario_catalog",
    "scenario_corpus",
    "scenario_from_dict",
    "scenario_personas",
]
