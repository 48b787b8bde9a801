"""``bench variants``: what each method and PROSE variant costs per demonstration, and the paper's grid.

Two scripted runs, each in a temporary folder:

1. ``scenarios/methods.toml`` (every method and PROSE variant, both tasks and
   frameworks) with a constant simulated latency (``PROBE_LATENCY_S``) on every
   role. From its event log, per method: model calls, input and output tokens
   per demonstration (= per task instance), by role and purpose; and the
   *sequential* model calls per demonstration, the critical path. With every
   call taking the same time, a call's depth is 1 + the largest depth among
   the calls of its instance that answered before it was asked (event order),
   so calls asked together (PROSE's validation sweep across components, the
   judge's questions, the judge beside the learning step) count once. The
   depth of an instance is its critical path in units of one call's latency.
   The agent-only depth counts only the agent's calls on that path.
2. ``scenarios/paper.toml``'s grid (its tasks, users, methods, seeds and
   demonstrations) with every role on the scripted backend, for the
   per-demonstration tokens of the paper's own users and PLUME framework.
   Scaled to the paper grid's demonstrations, they are priced at the paper's
   prices (agent: the model under test, writer, user and judge: GPT-4o) and timed at
   rate limits per endpoint (``project``).

The scripted backend counts about 4 tokens per 3 words; the prompts are the
real prompts, but every answer is word salad of a scripted length (verdicts
are one line, where a real judge reasons first), so the projection is an
order-of-magnitude estimate, not a quote.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import anyio
import msgspec

from benchmarks.common import Check, SuiteResult
from prose_sim.config import RunOptions
from prose_sim.eventlog import read_events
from prose_sim.events import (
    EpisodeStarted,
    InstanceStarted,
    ModelRequested,
    ModelResponded,
)
from prose_sim.runtime.plan import expand
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import Scenario, load_scenario
from prose_sim.world.personas import builtin_catalog

ROLES = ("agent", "writer", "user", "judge")
PROBE_LATENCY_S = 0.05  # constant latency of every scripted call in the critical-path run
CALL_LATENCY_S = 2.0  # assumed latency of one API call, for projected latency (an assumption)
GPT4O_PRICE = (2.5, 10.0)  # USD per million input / output tokens (gpt-4o list price)
DEFAULT_RPM, DEFAULT_TPM = 5000, 800_000  # per endpoint, when paper.toml sets none
# writer, user and judge share OpenAI's endpoint (GPT-4o); the model under test has its own
ENDPOINT_OF = {"agent": "agent", "writer": "openai", "user": "openai", "judge": "openai"}

COLUMNS = [
    "method",
    "demos",
    "calls_per_demo",
    "agent_calls_per_demo",
    "input_tokens_per_demo",
    "output_tokens_per_demo",
    "sequential_calls_per_demo",
    "agent_sequential_calls_per_demo",
    "top_purposes",
    "grid_demos",
    "grid_usd",
    "grid_hours",
]


def scenarios_dir() -> Path:
    """The repository's ``scenarios/`` (beside ``benchmarks/``), else ``./scenarios``."""
    here = Path(__file__).resolve().parents[1] / "scenarios"
    return here if here.is_dir() else Path("scenarios")


# --- measuring ------------------------------------------------------------------


class MethodFigures(msgspec.Struct, kw_only=True):
    """One method's totals over a run, and each instance's critical path."""

    method: str
    instances: int = 0
    # "role/purpose" -> {"calls", "input_tokens", "output_tokens"} (totals over the run)
    by_purpose: dict[str, dict[str, int]] = {}
    sequential: list[int] = []  # per instance: calls on the critical path
    agent_sequential: list[int] = []  # per instance: agent calls on the critical path

    def per_demo(self) -> dict[str, dict[str, float]]:
        n = max(1, self.instances)
        return {key: {k: v / n for k, v in u.items()} for key, u in sorted(self.by_purpose.items())}

    def by_role(self) -> dict[str, dict[str, float]]:
        """Per demonstration, by role: calls, input and output tokens."""
        out = {role: {"calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0} for role in ROLES}
        for key, u in self.per_demo().items():
            role = key.split("/", 1)[0]
            target = out.setdefault(role, {"calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0})
            for k in target:
                target[k] += u[k]
        return out


class Measurement(msgspec.Struct, kw_only=True):
    methods: dict[str, MethodFigures]
    # requests with distinct content (what the response cache pays for), by role: totals over the run
    unique_by_role: dict[str, dict[str, int]]
    calls: int
    instances: int
    wall_s: float


def _add(target: dict[str, int], calls: int, input_tokens: int, output_tokens: int) -> None:
    target["calls"] = target.get("calls", 0) + calls
    target["input_tokens"] = target.get("input_tokens", 0) + input_tokens
    target["output_tokens"] = target.get("output_tokens", 0) + output_tokens


def with_latency(scenario: Scenario, latency_s: float) -> Scenario:
    """Every role at a constant simulated latency (scripted roles only)."""
    models = scenario.models
    for role in ROLES:
        spec = models.of(role)
        models = msgspec.structs.replace(
            models, **{role: msgspec.structs.replace(spec, latency_s=latency_s, latency_jitter=0.0)}
        )
    return msgspec.structs.replace(scenario, models=models)


def measure(scenario: Scenario, run_dir: Path, *, probe_latency_s: float = 0.0) -> Measurement:
    """Run ``scenario`` (scripted roles) into ``run_dir`` and tally its event log by method."""
    for role in ROLES:
        backend = scenario.models.of(role).backend
        if backend != "scripted":
            raise ValueError(
                f"bench variants measures on the scripted backend; models.{role} is {backend}"
            )
    if probe_latency_s:
        scenario = with_latency(scenario, probe_latency_s)
    started = time.perf_counter()
    outcome = anyio.run(lambda: execute(prepare(scenario, run_dir, RunOptions(progress="off"))))
    wall = time.perf_counter() - started
    if outcome.status != "completed":
        raise RuntimeError(
            f"the scripted run in {run_dir} did not complete: {outcome.episodes_failed} episodes failed"
        )

    method_of: dict[str, str] = {}
    figures: dict[str, MethodFigures] = {}
    depth: dict[str, tuple[int, int]] = {}  # request id -> (depth, agent depth)
    done: dict[tuple[str, int], tuple[int, int]] = defaultdict(
        lambda: (0, 0)
    )  # deepest answered so far
    deepest: dict[tuple[str, int], tuple[int, int]] = {}
    seen_hashes: set[str] = set()
    hash_of: dict[str, tuple[str, bool]] = {}  # request id -> (role, first of its content)
    unique: dict[str, dict[str, int]] = {}
    calls = 0
    for event in read_events(run_dir / "events.jsonl"):
        if isinstance(event, EpisodeStarted):
            method_of[event.episode_id] = event.method
            figures.setdefault(event.method, MethodFigures(method=event.method))
        elif isinstance(event, InstanceStarted):
            figures[method_of[event.episode_id]].instances += 1
        elif isinstance(event, ModelRequested):
            key = (event.episode_id, event.instance)
            d, a = done[key]
            depth[event.request_id] = (d + 1, a + (event.role == "agent"))
            first = event.request_hash not in seen_hashes
            seen_hashes.add(event.request_hash)
            hash_of[event.request_id] = (event.role, first)
        elif isinstance(event, ModelResponded):
            key = (event.episode_id, event.instance)
            d, a = depth[event.request_id]
            old = done[key]
            done[key] = (max(old[0], d), max(old[1], a))
            top = deepest.get(key, (0, 0))
            deepest[key] = (max(top[0], d), max(top[1], a))
            fig = figures[method_of[event.episode_id]]
            _add(
                fig.by_purpose.setdefault(f"{event.role}/{event.purpose}", {}),
                1,
                event.input_tokens,
                event.output_tokens,
            )
            role, first = hash_of[event.request_id]
            if first:
                _add(unique.setdefault(role, {}), 1, event.input_tokens, event.output_tokens)
            calls += 1
    for (episode, _instance), (d, a) in sorted(deepest.items()):
        fig = figures[method_of[episode]]
        fig.sequential.append(d)
        fig.agent_sequential.append(a)
    return Measurement(
        methods=figures,
        unique_by_role=unique,
        calls=calls,
        instances=sum(f.instances for f in figures.values()),
        wall_s=round(wall, 2),
    )


# --- projecting ------------------------------------------------------------------


class Assumptions(msgspec.Struct, kw_only=True):
    """Prices (USD per million input/output tokens) by role, rate limits by endpoint."""

    prices: dict[str, tuple[float, float]]
    endpoint_of: dict[str, str] = msgspec.field(default_factory=lambda: dict(ENDPOINT_OF))
    limits: dict[str, tuple[int, int]] = msgspec.field(
        default_factory=lambda: {
            "agent": (DEFAULT_RPM, DEFAULT_TPM),
            "openai": (DEFAULT_RPM, DEFAULT_TPM),
        }
    )  # endpoint -> (requests per minute, tokens per minute)

    def scaled_prices(self, factor: float) -> Assumptions:
        return msgspec.structs.replace(
            self, prices={r: (p[0] * factor, p[1] * factor) for r, p in self.prices.items()}
        )


def paper_assumptions(paper: Scenario) -> Assumptions:
    """paper.toml's prices (GPT-4o's list price where a role has none) and rate limits (defaults where none)."""
    prices = {}
    for role in ROLES:
        spec = getattr(paper.models, role)
        prices[role] = (
            (spec.input_price, spec.output_price)
            if (spec.input_price or spec.output_price)
            else GPT4O_PRICE
        )
    limits: dict[str, tuple[int, int]] = {}
    for role in ROLES:
        spec = getattr(paper.models, role)
        endpoint = ENDPOINT_OF[role]
        rpm, tpm = limits.get(endpoint, (None, None))
        limits[endpoint] = (rpm or spec.rpm or DEFAULT_RPM, tpm or spec.tpm or DEFAULT_TPM)
    return Assumptions(prices=prices, limits=limits)


class EndpointLoad(TypedDict):
    """One endpoint's part of a workload, and the time it needs at its rate limits."""

    requests: float
    tokens: float
    hours: float
    bound: str  # "rpm" or "tpm": the limit that sets its time


class Projection(TypedDict):
    usd: float
    usd_by_role: dict[str, float]
    hours: float  # the slowest endpoint's
    endpoints: dict[str, EndpointLoad]


def project(
    usage_by_role: Mapping[str, Mapping[str, float]], assumptions: Assumptions
) -> Projection:
    """Dollars and hours of a workload (calls and tokens by role, totals).

    Dollars: tokens x the role's prices. Hours: each endpoint serves the roles
    mapped to it at its rpm and tpm (tokens = input + output), so it needs
    max(requests/rpm, tokens/tpm) minutes; the workload takes the slowest
    endpoint's time (endpoints run in parallel, each kept saturated).
    """
    usd_by_role: dict[str, float] = {}
    demand: dict[str, tuple[float, float]] = {}  # endpoint -> (requests, tokens)
    for role, u in usage_by_role.items():
        price_in, price_out = assumptions.prices.get(role, (0.0, 0.0))
        usd_by_role[role] = (u["input_tokens"] * price_in + u["output_tokens"] * price_out) / 1e6
        endpoint = assumptions.endpoint_of.get(role, role)
        requests, tokens = demand.get(endpoint, (0.0, 0.0))
        demand[endpoint] = (
            requests + u["calls"],
            tokens + (u["input_tokens"] + u["output_tokens"]),
        )
    endpoints: dict[str, EndpointLoad] = {}
    for name, (requests, tokens) in demand.items():
        rpm, tpm = assumptions.limits.get(name, (DEFAULT_RPM, DEFAULT_TPM))
        endpoints[name] = EndpointLoad(
            requests=requests,
            tokens=tokens,
            hours=max(requests / rpm, tokens / tpm) / 60,
            bound="rpm" if requests / rpm >= tokens / tpm else "tpm",
        )
    return Projection(
        usd=sum(usd_by_role.values()),
        usd_by_role=usd_by_role,
        hours=max((ep["hours"] for ep in endpoints.values()), default=0.0),
        endpoints=endpoints,
    )


def scale(
    per_demo_by_role: Mapping[str, Mapping[str, float]], demos: float
) -> dict[str, dict[str, float]]:
    return {role: {k: v * demos for k, v in u.items()} for role, u in per_demo_by_role.items()}


def grid_demos(scenario: Scenario) -> dict[str, int]:
    """Demonstrations (task instances) of each method label in a scenario's grid."""
    out: dict[str, int] = defaultdict(int)
    for plan in expand(scenario):
        out[plan.method_label] += len(plan.personas) * scenario.demonstrations_per_user
    return dict(out)


# --- the suite ----------------------------------------------------------------------


def _top_purposes(fig: MethodFigures, k: int = 3) -> str:
    per = sorted(fig.per_demo().items(), key=lambda kv: -kv[1]["calls"])[:k]
    return ", ".join(f"{key.split('/', 1)[1]} {u['calls']:.2g}" for key, u in per)


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def run(
    quick: bool = False,
    *,
    methods_scenario: Scenario | None = None,
    paper_scenario: Scenario | None = None,
    assumptions: Assumptions | None = None,
    workdir: Path | None = None,
) -> SuiteResult:
    """The suite. ``methods_scenario`` / ``paper_scenario`` replace the bundled ones (tests)."""
    started = time.perf_counter()
    off = ['metrics.bertscore=""']
    if methods_scenario is None:
        quick_methods = ["demonstrations_per_user=2"] if quick else []
        methods_scenario = load_scenario(scenarios_dir() / "methods.toml", off + quick_methods)
        if quick:
            methods_scenario = _one_task(methods_scenario)
    # the paper's users are the built-in PLUME users (installed persona plugins are not the paper's)
    # the bench runs offline: the bundled documents stand in for the paper's datasets
    bundled = ["corpus=bundled"]
    paper = load_scenario(scenarios_dir() / "paper.toml", bundled, catalog=builtin_catalog())
    if paper_scenario is None:
        scripted = [f"models.{role}.backend=scripted" for role in ROLES]
        probe_overrides = (
            off
            + bundled
            + scripted
            + ([f"seeds=[{paper.seeds[0]}]", "demonstrations_per_user=2"] if quick else [])
        )
        paper_scenario = load_scenario(
            scenarios_dir() / "paper.toml", probe_overrides, catalog=builtin_catalog()
        )
        if quick:
            paper_scenario = _one_task(paper_scenario)
    assumptions = assumptions or paper_assumptions(paper)
    demos_in_grid = grid_demos(paper)

    with tempfile.TemporaryDirectory(prefix="bench-variants-") as tmp:
        root = workdir or Path(tmp)
        measured = measure(methods_scenario, root / "methods", probe_latency_s=PROBE_LATENCY_S)
        grid_probe = measure(paper_scenario, root / "paper")

    rows: list[dict[str, object]] = []
    grid_total: dict[str, dict[str, float]] = {}
    for label in methods_scenario.methods:
        fig = measured.methods.get(label)
        if fig is None:
            continue
        per_role = fig.by_role()
        calls = sum(u["calls"] for u in per_role.values())
        seq = _mean(fig.sequential)
        row: dict[str, object] = {
            "method": label,
            "demos": fig.instances,
            "calls_per_demo": round(calls, 2),
            "agent_calls_per_demo": round(per_role["agent"]["calls"], 2),
            "input_tokens_per_demo": round(sum(u["input_tokens"] for u in per_role.values())),
            "output_tokens_per_demo": round(sum(u["output_tokens"] for u in per_role.values())),
            "sequential_calls_per_demo": round(seq, 2),
            "agent_sequential_calls_per_demo": round(_mean(fig.agent_sequential), 2),
            "max_sequential_calls": max(fig.sequential, default=0),
            f"latency_s_per_demo_at_{CALL_LATENCY_S:g}s_per_call": round(seq * CALL_LATENCY_S, 1),
            "top_purposes": _top_purposes(fig),
            "by_role": {
                role: {k: round(v, 2) for k, v in u.items()} for role, u in per_role.items()
            },
            "purposes": {
                key: {k: round(v, 2) for k, v in u.items()} for key, u in fig.per_demo().items()
            },
        }
        probe = grid_probe.methods.get(label)
        demos = demos_in_grid.get(label, 0)
        if probe is not None and demos:
            workload = scale(probe.by_role(), demos)
            projection = project(workload, assumptions)
            for role, u in workload.items():
                for k, v in u.items():
                    grid_total.setdefault(role, {}).setdefault(k, 0.0)
                    grid_total[role][k] += v
            row.update(
                grid_demos=demos,
                grid_usd=round(projection["usd"], 2),
                grid_hours=round(projection["hours"], 2),
                grid={
                    "per_demo_by_role": {
                        r: {k: round(v, 2) for k, v in u.items()}
                        for r, u in probe.by_role().items()
                    },
                    "usd_by_role": {r: round(v, 2) for r, v in projection["usd_by_role"].items()},
                    "endpoints": _round_endpoints(projection["endpoints"]),
                },
            )
        else:
            row.update(grid_demos=0, grid_usd="", grid_hours="")  # not in the paper's grid
        rows.append(row)

    every_call = project(grid_total, assumptions)
    shared = project(
        grid_total, msgspec.structs.replace(assumptions, endpoint_of={r: "openai" for r in ROLES})
    )
    # the response cache: requests of identical content (e.g. a PLUME user's text for one document,
    # the same for every method; first drafts before anything is learned) are paid once
    probe_demos = grid_probe.instances
    grid_demos_total = sum(demos_in_grid.values())
    cached_workload = scale(
        {
            r: {k: v / max(1, probe_demos) for k, v in u.items()}
            for r, u in grid_probe.unique_by_role.items()
        },
        grid_demos_total,
    )
    cached = project(cached_workload, assumptions)
    total_calls = sum(u["calls"] for u in grid_total.values())
    rows.append(
        {
            "method": "paper grid (total)",
            "demos": "",
            "calls_per_demo": round(total_calls / max(1, grid_demos_total), 2),
            "agent_calls_per_demo": round(
                grid_total.get("agent", {}).get("calls", 0.0) / max(1, grid_demos_total), 2
            ),
            "input_tokens_per_demo": round(
                sum(u["input_tokens"] for u in grid_total.values()) / max(1, grid_demos_total)
            ),
            "output_tokens_per_demo": round(
                sum(u["output_tokens"] for u in grid_total.values()) / max(1, grid_demos_total)
            ),
            "sequential_calls_per_demo": "",
            "agent_sequential_calls_per_demo": "",
            "top_purposes": "",
            "grid_demos": grid_demos_total,
            "grid_usd": round(every_call["usd"], 2),
            "grid_hours": round(every_call["hours"], 2),
            "grid": {
                "calls": round(total_calls),
                "by_role": {r: {k: round(v) for k, v in u.items()} for r, u in grid_total.items()},
                "usd_by_role": {r: round(v, 2) for r, v in every_call["usd_by_role"].items()},
                "endpoints": _round_endpoints(every_call["endpoints"]),
                "with_response_cache": {
                    "calls": round(sum(u["calls"] for u in cached_workload.values())),
                    "usd": round(cached["usd"], 2),
                    "hours": round(cached["hours"], 2),
                    "usd_by_role": {r: round(v, 2) for r, v in cached["usd_by_role"].items()},
                },
                "one_shared_endpoint_hours": round(shared["hours"], 2),
            },
        }
    )

    limits = ", ".join(
        f"{ep} rpm {rpm:,} tpm {tpm:,}" for ep, (rpm, tpm) in assumptions.limits.items()
    )
    prices = ", ".join(f"{r} ${p[0]:g}/${p[1]:g}" for r, p in assumptions.prices.items())
    checks = [
        Check(
            name="paper grid: demonstrations (all methods)",
            measured=grid_demos_total,
            target="",
            met=None,
        ),
        Check(
            name="paper grid: model calls (every call paid)",
            measured=round(total_calls),
            target="",
            met=None,
        ),
        Check(
            name="paper grid: projected USD (every call paid)",
            measured=round(every_call["usd"], 2),
            target="order of magnitude",
            met=None,
        ),
        Check(
            name="paper grid: projected USD with the response cache",
            measured=round(cached["usd"], 2),
            target="order of magnitude",
            met=None,
        ),
        Check(
            name="paper grid: projected hours (agent endpoint + OpenAI endpoint)",
            measured=round(every_call["hours"], 2),
            target="at the rate limits below",
            met=None,
        ),
        Check(
            name="paper grid: projected hours (every role on one endpoint)",
            measured=round(shared["hours"], 2),
            target="at the rate limits below",
            met=None,
        ),
    ]
    longest = max((max(f.sequential, default=0) for f in measured.methods.values()), default=0)
    notes = [
        "per-demonstration figures (columns 2-9): `scenarios/methods.toml`"
        + (" with demonstrations_per_user=2 and one task (--quick)" if quick else "")
        + f", scripted backend, {measured.instances} demonstrations, {measured.calls:,} calls; demos = "
        "demonstrations measured (both tasks and frameworks of methods.toml); calls and tokens count every role "
        "(agent = the model under test, which only infers; writer = the model that writes drafts and "
        "candidates, the user's by default; user = the simulated user; judge = the metrics' judge)",
        (
            f"sequential_calls_per_demo: the critical path of one demonstration in model calls (mean over "
            f"demonstrations; max {longest}): derived from the event log of a run where every call took "
            f"{PROBE_LATENCY_S:g} s, a call's depth being 1 + the deepest call of its instance answered before it was "
            f"asked, so calls made concurrently (PROSE's validation across components, the judge's questions, the judge "
            f"beside the learning step) count once. The scripted backend has no real latency: latency per demonstration "
            f"~ sequential calls x one call's latency, e.g. x {CALL_LATENCY_S:g} s (JSON key "
            f"latency_s_per_demo_at_{CALL_LATENCY_S:g}s_per_call; an assumption, not a measurement); agent_sequential: "
            f"the agent's calls on that path"
        ),
        f"grid columns: the paper grid of `scenarios/paper.toml` ({', '.join(paper.tasks)}, the built-in PLUME "
        f"users (not those of installed persona plugins), seeds {paper.seeds}, {paper.demonstrations_per_user} "
        f"demonstrations per user: {grid_demos_total:,} demonstrations, {max(demos_in_grid.values(), default=0):,} per method), projected from the "
        f"per-demonstration calls and tokens of a scripted run of that grid"
        + (" (--quick: one seed, one task, 2 demonstrations)" if quick else "")
        + f" ({grid_probe.instances:,} demonstrations, {grid_probe.calls:,} calls). Methods not in paper.toml "
        "have no grid figures",
        (
            f"prices (USD per million input/output tokens, from paper.toml, GPT-4o list price where none): {prices}; "
            f"rate limits per endpoint: {limits}; writer, user and judge (GPT-4o) share the OpenAI endpoint and the agent has "
            "its own; hours = max over endpoints of max(requests/rpm, tokens/tpm)/60, i.e. each endpoint kept "
            "saturated (the rate-limit bound; retries and 429s come on top). If the agent is GPT-4o on the same "
            "account, read the one-endpoint figure"
        ),
        (
            f"the total row: the grid's calls and tokens per demonstration averaged over its methods, and its totals; "
            f"latency does not bound the grid: its longest episode is about {paper.demonstrations_per_user} "
            f"demonstrations x {longest} sequential calls x {CALL_LATENCY_S:g} s = "
            f"{paper.demonstrations_per_user * longest * CALL_LATENCY_S / 60:.1f} min when every episode runs at once"
        ),
        (
            "'with the response cache': requests of identical content (the same user text for one document for every "
            "method, first drafts before anything is learned, ...) are answered once, counted by distinct request "
            "content in the scripted run"
        ),
        (
            "ESTIMATE: the scripted backend counts about 4 tokens per 3 words; prompts are the real prompts, but "
            "answers are scripted lengths (texts of 30-90 words, one-line verdicts where GPT-4o writes its reasoning "
            "first), so output tokens and the texts fed back into later prompts are under-counted. The projection is "
            "an order-of-magnitude estimate, not a quote"
        ),
        (
            f"run time: methods run {measured.wall_s:.1f} s (at {PROBE_LATENCY_S:g} s per call), grid run "
            f"{grid_probe.wall_s:.1f} s, suite {time.perf_counter() - started:.1f} s"
        ),
    ]
    result = SuiteResult(
        suite="variants",
        command="python -m benchmarks variants" + (" --quick" if quick else ""),
        columns=COLUMNS,
        rows=rows,
        checks=checks,
        notes=notes,
    )
    # machine() records torch.__version__ when torch is loaded: a str subclass msgspec cannot encode
    result.machine = {
        k: v if isinstance(v, (bool, int, float)) else str(v) for k, v in result.machine.items()
    }
    return result


def _round_endpoints(endpoints: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, object]]:
    return {
        name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in ep.items()}
        for name, ep in endpoints.items()
    }


def _one_task(scenario: Scenario) -> Scenario:
    """The scenario's first task only (--quick)."""
    first = next(iter(scenario.tasks))
    return msgspec.structs.replace(scenario, tasks={first: scenario.tasks[first]})
