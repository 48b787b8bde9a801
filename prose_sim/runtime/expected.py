"""How much work a run plans: task instances (exact) and model calls (an estimate).

The instance total is exact: every episode of the plan runs
``demonstrations_per_user`` instances per user. The model calls an instance
makes depend on what the models answer (CIPHER infers only when the draft
differs; PROSE stops refining when the candidate equals the user's text, and
validation reuses cached verdicts), so the expected count is an ESTIMATE from
the method's settings, per method:

- every instance: the user's text (1) and the agent's draft (1);
- the judge, when ``[metrics] judge``: one PPCM question per true component,
  one FPM question, and the similarity question once the draft has
  preferences;
- cipher1 / cipherN: one infer call; cipherN merges once 2+ earlier instances exist;
- prose / icl+prose: coalesce (once an earlier instance exists), S refine
  steps, S-1 new candidates (``iterate``), the breakdown, and, when it
  validates, one verdict per component for the new demonstration and each
  earlier one (up to k), counting the user's number of components as the
  inferred one;
- no_learning, oracle, icl: nothing more; an unknown (plugin) method: one call.

The progress display replaces a method's estimate by its observed calls per
finished instance once it has finished instances (``ProgressTotals.expected_calls``).
"""

from __future__ import annotations

import msgspec

from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.runtime.plan import EpisodePlan


class MethodTotals(msgspec.Struct, kw_only=True):
    instances: int = 0
    calls: float = 0.0  # the a-priori estimate for all of them


class PlanTotals(msgspec.Struct, frozen=True, kw_only=True):
    episodes: int
    instances: int
    methods: dict[str, MethodTotals]  # by method label

    def expected_calls(self, observed: dict[str, list[int]] | None = None) -> float:
        """The estimate, with each method's observed calls per finished instance
        (``observed``: label -> [finished instances, their calls]) where it has some."""
        total = 0.0
        for label, m in self.methods.items():
            finished, calls = (observed or {}).get(label, (0, 0))
            total += m.instances * calls / finished if finished else m.calls
        return total


def instance_calls(
    method: str,
    settings: MethodSettings,
    agent_model: str,
    earlier: int,
    components: int,
    judge: bool,
) -> float:
    """Estimated model calls of one instance with ``earlier`` instances before it in its episode."""
    calls = 2.0  # the user's text and the draft
    has_preferences = method == "oracle"
    if method in ("cipher1", "cipherN"):
        merged = settings.num_merged or (3 if method == "cipherN" else 1)
        calls += 1 + (merged > 1 and earlier >= 2)
        has_preferences = earlier > 0
    elif method in ("prose", "icl+prose"):
        from prose_sim.actors.inferrers.prose import resolve_config

        cfg = resolve_config(settings, agent_model, method == "icl+prose")
        steps = cfg.num_refinement_steps
        calls += (earlier > 0) + steps
        calls += steps - 1 if cfg.candidate_type == "iterate" else 0
        calls += {"after_refinement": 1, "each_iteration": steps}.get(cfg.breakdown, 0)
        if cfg.do_validate:
            calls += components * (1 + min(earlier, cfg.num_other_sequences))
        has_preferences = earlier > 0
    elif method not in ("no_learning", "oracle", "icl"):
        calls += 1
    if judge:
        calls += components + 1 + has_preferences
    return calls


def plan_totals(
    plans: list[EpisodePlan], demonstrations_per_user: int, catalog, agent_model: str, judge: bool
) -> PlanTotals:
    """Totals of ``plans``; ``catalog.get(framework, task, name)`` gives each persona."""
    methods: dict[str, MethodTotals] = {}
    instances = 0
    for plan in plans:
        m = methods.setdefault(plan.method_label, MethodTotals())
        n = demonstrations_per_user * len(plan.personas)
        m.instances += n
        instances += n
        for i in range(n):
            persona = catalog.get(plan.framework, plan.task, plan.personas[i % len(plan.personas)])
            components = len(persona.components)
            m.calls += instance_calls(plan.method, plan.settings, agent_model, i, components, judge)
    return PlanTotals(episodes=len(plans), instances=instances, methods=methods)
