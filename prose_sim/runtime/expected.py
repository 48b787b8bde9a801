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
- the method's own calls, as its class estimates them (``Inferrer.expected_calls``:
  one call unless the method says otherwise; cipher, prose, no_learning, oracle
  and icl each say).

The progress display replaces a method's estimate by its observed calls per
finished instance once it has finished instances (``ProgressTotals.expected_calls``).
"""

from __future__ import annotations

import msgspec

from prose_sim.actors.inferrers import method_class
from prose_sim.config.methods import MethodSettings
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
    return sum(
        instance_calls_by_role(method, settings, agent_model, earlier, components, judge).values()
    )


def instance_calls_by_role(
    method: str,
    settings: MethodSettings,
    agent_model: str,
    earlier: int,
    components: int,
    judge: bool,
) -> dict[str, float]:
    """``instance_calls`` by role: the user's text (user), the draft (writer), the method's
    own calls (agent: PROSE's candidates, which the writer writes, are counted here too) and
    the judge's questions."""
    estimate = method_class(method).expected_calls(settings, agent_model, earlier, components)
    return {
        "user": 1.0,
        "writer": 1.0,
        "agent": estimate.calls,
        "judge": float(components + 1 + estimate.has_preferences) if judge else 0.0,
    }


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
