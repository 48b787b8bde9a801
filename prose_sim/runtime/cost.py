"""What a run is projected to cost, before its first call: calls, tokens, USD and time.

The projection assumes (docs/cost.md says the same):

- calls: the expected calls per task instance of ``runtime.expected`` (by role: the
  user's text, the draft, the method's own calls, the judge's questions), for the
  episodes still to run;
- input tokens: the user's and the writer's calls read the document, the judge's a text
  (the draft), the agent's two (the draft and the user's text), each text as long as the
  user's and writer's answers (below), plus ``PROMPT_TOKENS`` of instructions and
  preferences; a document's tokens are the mean of its source's documents, by the
  gateway's estimate (``models.tokens``);
- output tokens: the user's texts and the drafts about a document's length, the agent's
  and the judge's answers ``SHORT_ANSWER_TOKENS`` (preference lists, verdicts), each at
  most the role's ``max_new_tokens``; a scripted role's answers its mean length
  (``min_words``..``max_words``). The ceiling (``output_tokens_max``, ``usd_max``) has
  every answer at ``max_new_tokens``;
- USD: those tokens at each role's ``input_price`` / ``output_price``;
- time: each rate-limited endpoint serves its roles' calls and tokens at its ``rpm`` /
  ``tpm`` per ``rate_window_s`` (as this shard takes them), endpoints in parallel; the
  slowest sets the time. Latency and concurrency are left out: when the limits are not
  what binds, the run takes longer.

And what a resumed run has spent so far (``prior_spend``): the spend its log records.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from prose_sim.config import BudgetSettings, ModelSpec, ScriptedSpec
from prose_sim.errors import UsageError
from prose_sim.events import ModelResponded
from prose_sim.models.budget import Spend, budget_text
from prose_sim.models.gateway import RoleModel
from prose_sim.models.limits import EndpointLayers
from prose_sim.models.protocol import ROLES
from prose_sim.models.tokens import estimate_tokens
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.expected import instance_calls_by_role
from prose_sim.runtime.plan import EpisodePlan
from prose_sim.runtime.progress import duration
from prose_sim.runtime.resume import PriorRun

PROMPT_TOKENS = 150  # instructions and preferences of a prompt, beyond its texts
SHORT_ANSWER_TOKENS = 100  # an agent's or judge's answer: a preference list, a verdict
# roles whose answers are texts about a document's length
TEXT_ROLES = ("user", "writer")
# the texts a call reads: the document (None), or this many of the user's and writer's texts
TEXTS_READ: dict[str, int | None] = {"user": None, "writer": None, "judge": 1, "agent": 2}


class Projection(msgspec.Struct, kw_only=True):
    """The run's projected spend (see the module's docstring for what it assumes)."""

    calls: int
    input_tokens: int
    output_tokens: int
    usd: float
    # a ceiling: every answer at its role's max_new_tokens
    output_tokens_max: int
    usd_max: float
    # seconds the rate limits need for it (None: no endpoint is rate-limited), and the
    # endpoint (its roles) that needs the longest
    limits_s: float | None = None
    bound_by: str = ""

    @property
    def priced(self) -> bool:
        return self.usd_max > 0


def document_tokens(corpus, source: str) -> float:
    docs = corpus.documents(source)
    return sum(estimate_tokens(d.text) for d in docs) / len(docs) if docs else 0.0


def project(
    plans: list[EpisodePlan],
    demonstrations_per_user: int,
    catalog,
    corpus,
    roles: Mapping[str, RoleModel],
    layers: Mapping[str, EndpointLayers],
    judge: bool,
    specs: Mapping[str, ModelSpec] | None = None,
) -> Projection:
    """The projection for ``plans``; ``catalog.get(framework, task, name)`` gives each persona,
    ``corpus.documents(source)`` its documents; ``roles`` and ``layers`` are the built models',
    ``specs`` the roles' specs (a scripted role's answer length)."""
    calls = dict.fromkeys(ROLES, 0.0)
    inputs = dict.fromkeys(ROLES, 0.0)
    outputs = dict.fromkeys(ROLES, 0.0)
    # by document source: a document's tokens, each role's answer's, the texts' mean
    by_source: dict[str, tuple[float, dict[str, float], float]] = {}
    agent_model = roles["agent"].model
    for plan in plans:
        n = demonstrations_per_user * len(plan.personas)
        for i in range(n):
            persona = catalog.get(plan.framework, plan.task, plan.personas[i % len(plan.personas)])
            source = persona.document_source
            if source not in by_source:
                document = document_tokens(corpus, source)
                answers = {r: _answer_tokens(r, document, roles[r], specs) for r in ROLES}
                by_source[source] = (document, answers, (answers["user"] + answers["writer"]) / 2)
            document, answers, text = by_source[source]
            by_role = instance_calls_by_role(
                plan.method, plan.settings, agent_model, i, len(persona.components), judge
            )
            for role, c in by_role.items():
                read = TEXTS_READ.get(role)
                calls[role] += c
                inputs[role] += c * ((document if read is None else read * text) + PROMPT_TOKENS)
                outputs[role] += c * answers[role]
    ceiling = {role: calls[role] * roles[role].params.max_new_tokens for role in ROLES}
    usd_in = sum(inputs[r] * roles[r].input_price for r in ROLES) / 1e6
    usd_out = sum(outputs[r] * roles[r].output_price for r in ROLES) / 1e6
    usd_ceiling = sum(ceiling[r] * roles[r].output_price for r in ROLES) / 1e6
    limits_s, bound_by = _limits_time(calls, inputs, outputs, roles, layers)
    return Projection(
        calls=round(sum(calls.values())),
        input_tokens=round(sum(inputs.values())),
        output_tokens=round(sum(outputs.values())),
        usd=usd_in + usd_out,
        output_tokens_max=round(sum(ceiling.values())),
        usd_max=usd_in + usd_ceiling,
        limits_s=limits_s,
        bound_by=bound_by,
    )


def _answer_tokens(
    role: str, document: float, served: RoleModel, specs: Mapping[str, ModelSpec] | None
) -> float:
    """The expected tokens of one answer of ``role`` (see the module's docstring)."""
    spec = specs.get(role) if specs is not None else None
    if isinstance(spec, ScriptedSpec):  # the test double's answers: min..max words
        return estimate_tokens("word " * round((spec.min_words + spec.max_words) / 2))
    typical = document if role in TEXT_ROLES else SHORT_ANSWER_TOKENS
    return min(typical, served.params.max_new_tokens)


def _limits_time(
    calls: Mapping[str, float],
    inputs: Mapping[str, float],
    outputs: Mapping[str, float],
    roles: Mapping[str, RoleModel],
    layers: Mapping[str, EndpointLayers],
) -> tuple[float | None, str]:
    """Seconds the slowest rate-limited endpoint needs for its roles' calls and tokens."""
    endpoints = [
        (layer, [r for r in members if calls[r]])
        for layer, members in endpoint_roles(roles, layers)
        if layer.limits.rpm or layer.limits.tpm
    ]
    slowest: tuple[float, str] | None = None
    for layer, members in endpoints:
        if not members:
            continue
        limits = layer.limits
        requests = sum(calls[r] for r in members)
        tokens = sum(inputs[r] + outputs[r] for r in members)
        windows = max(
            requests / limits.rpm if limits.rpm else 0.0,
            tokens / limits.tpm if limits.tpm else 0.0,
        )
        seconds = windows * limits.window_s
        if slowest is None or seconds > slowest[0]:
            slowest = (seconds, "+".join(members))
    return (None, "") if slowest is None else slowest


def _count(n: float) -> str:
    """1,234 / 12.3k / 4.56M."""
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    if n >= 1e4:
        return f"{n / 1e3:.3g}k"
    return f"{round(n):,}"


def projection_line(p: Projection) -> str:
    """The one line said before the first call."""
    time = (
        f"~{duration(p.limits_s)} at the rate limits ({p.bound_by}'s endpoint binds)"
        if p.limits_s is not None
        else "no rate limit set"
    )
    return (
        f"projected: ~{_count(p.calls)} model calls, ~{_count(p.input_tokens)} input + "
        f"~{_count(p.output_tokens)} output tokens, ~${p.usd:,.2f} (at most ~${p.usd_max:,.2f} "
        f"with every answer at max_new_tokens), {time}"
    )


def prior_spend(prior: PriorRun) -> Spend:
    """What a resumed run has spent, as its new log will record it: the calls of the episodes
    kept, and the answers of those run again (served from the log, recorded again with
    their first accounting). Calls that failed in an episode run again are not counted:
    they are dropped from the log, and asked again."""
    done = prior.finished
    spend = Spend.of(prior.kept_events())
    spend.add(
        Spend.of(
            e
            for e in prior.events
            if isinstance(e, ModelResponded) and e.episode_id and e.episode_id not in done
        )
    )
    return spend


def check_budget_left(prior: PriorRun, budget: BudgetSettings | None, *, raised: bool) -> None:
    """Refuse (naming the limit and how to raise it) to resume a run whose spend so far has
    reached its ``[budget]``, or that its budget stopped and whose budget was not changed
    (``raised``): the budget counts the whole run's spend, before the resume too, so the
    resumed run would stop again at once."""
    if budget is None or not budget.limited:
        return
    spent = prior_spend(prior)
    reached = spent.reached(budget)
    stopped = (RunFolder(prior.run_dir).summary() or {}).get("stop") == "budget"
    if not reached and (raised or not stopped):
        return
    keys = reached or [key for key, value in msgspec.structs.asdict(budget).items() if value]
    why = f"{', '.join(reached)} reached" if reached else "the next call did not fit"
    raise UsageError(
        f"{prior.run_dir}: the run stopped at its [budget], having spent "
        f"{budget_text(spent, budget)} ({why}; the budget counts the whole run's spend, before "
        f"a resume too); to go on, raise it, e.g. python -m prose_sim run --resume "
        f"{prior.run_dir} " + " ".join(f"--set budget.{key}={_raised(key, spent)}" for key in keys)
    )


def _raised(key: str, spent: Spend) -> str:
    """A limit twice the spend so far, as the refusal suggests it."""
    match key:
        case "max_usd":
            return f"{max(spent.usd * 2, 0.01):.2f}"
        case "max_calls":
            return str(max(spent.calls * 2, 1))
        case _:
            return str(max(spent.tokens * 2, 1))


def endpoint_roles(
    roles: Mapping[str, RoleModel], layers: Mapping[str, EndpointLayers]
) -> list[tuple[EndpointLayers, list[str]]]:
    """Each limited endpoint the roles call, with its roles (named by them, not by URL)."""
    endpoints: dict[int, tuple[EndpointLayers, list[str]]] = {}
    for role in ROLES:
        layer = layers.get(roles[role].backend)
        if layer is not None:
            endpoints.setdefault(id(layer), (layer, []))[1].append(role)
    return list(endpoints.values())


def shard_line(
    shard: tuple[int, int] | None,
    roles: Mapping[str, RoleModel],
    layers: Mapping[str, EndpointLayers],
) -> str:
    """What this shard takes of each endpoint's limits ("" for a whole run)."""
    if shard is None:
        return ""
    k, n = shard
    parts = []
    divided = 1
    for layer, members in endpoint_roles(roles, layers):
        limits = layer.limits
        divided = max(divided, limits.divided_by)
        took = [
            f"{name} {_limit(value)}"
            for name, value in (("rpm", limits.rpm), ("tpm", limits.tpm))
            if value
        ]
        took.append(f"max_concurrency {limits.max_concurrency}")
        parts.append(f"{'+'.join(members)}: {', '.join(took)}")
    if not parts:
        return f"shard {k}/{n}: no endpoint has limits to share"
    share = (
        f"takes 1/{n} of each endpoint's limits"
        if divided > 1
        else "takes each endpoint's whole limits ([sharding] split_limits = false)"
    )
    return f"shard {k}/{n} {share}: " + "; ".join(parts)


def _limit(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
