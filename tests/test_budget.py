"""Cost before and during a run: the projection, the ``[budget]`` stop, the spend, resuming.

Scripted runs (priced with ``--set``) and the budget layer on fake backends; no sleeps,
no timings asserted.
"""

from __future__ import annotations

import json

import anyio
import pytest
from conftest import MINIMAL

from prose_sim.cli import main
from prose_sim.cli.common import EXIT_BUDGET
from prose_sim.config import BudgetSettings
from prose_sim.errors import RunStopping
from prose_sim.eventlog import read_events
from prose_sim.events import ModelRequested, ModelResponded, RunFinished
from prose_sim.models.budget import BudgetState, Spend
from prose_sim.models.gateway import Gateway, RoleModel
from prose_sim.models.limits import EndpointLayers, EndpointLimits
from prose_sim.models.protocol import ROLES, Completion, ModelRequest, SamplingParams
from prose_sim.runtime.cost import project
from prose_sim.runtime.plan import expand
from prose_sim.scenario import load_run

SCENARIO = MINIMAL.replace("seeds = [1235]", "seeds = [1, 2]").replace(
    "[methods.oracle]", '[methods.oracle]\n[methods.prose]\n[metrics]\nbertscore = ""\n'
)
PRICES = [
    f"--set=models.{role}.{side}_price={price}"
    for role in ("user", "agent", "judge")
    for side, price in (("input", 2.5), ("output", 10.0))
]


def run(*args: object) -> int:
    return main([*map(str, args), "--progress", "off", "--no-report"])


def resume(out, *args: str) -> int:
    return main(["run", "--resume", str(out), "--progress", "off", "--no-report", *args])


def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def logged_spend(run_dir) -> Spend:
    return Spend.of(read_events(run_dir / "events.jsonl"))


# --- the stop --------------------------------------------------------------------------


def test_a_run_within_its_budget_completes_with_its_spend_in_summary_json(write_scenario, tmp_path):
    out = tmp_path / "run"
    assert run("run", write_scenario(SCENARIO), "--out", out, *PRICES) == 0
    s = summary(out)
    spend = logged_spend(out)
    assert s["spend"] == {"usd": round(spend.usd, 6), "calls": spend.calls, "tokens": spend.tokens}
    assert s["spend"]["calls"] == s["model_calls"] > 0  # scripted: no cache, no failure
    assert s["spend"]["usd"] == pytest.approx(s["cost_usd"], abs=1e-5) and s["cost_usd"] > 0
    assert s["budget"] == {} and s["stop"] == ""


def test_an_unpriced_run_records_its_spend_too(write_scenario, tmp_path):
    out = tmp_path / "run"
    assert run("run", write_scenario(SCENARIO), "--out", out) == 0
    s = summary(out)
    assert s["spend"]["usd"] == 0 and s["spend"]["calls"] == s["model_calls"] > 0


@pytest.mark.parametrize(
    ("key", "value"), [("max_calls", 40), ("max_usd", 0.05), ("max_tokens", 20_000)]
)
def test_the_run_stops_before_its_spend_passes_the_budget(
    write_scenario, tmp_path, capsys, key, value
):
    out = tmp_path / "run"
    code = run(
        "run", write_scenario(SCENARIO), "--out", out, *PRICES, f"--set=budget.{key}={value}"
    )
    assert code == EXIT_BUDGET == 3
    err = capsys.readouterr().err
    assert "stopped: the [budget] is reached" in err and f"--resume {out}" in err
    s = summary(out)
    assert s["stop"] == "budget" and s["status"] == "stopped"
    assert s["budget"] == {key: value}
    spent = {"max_calls": "calls", "max_usd": "usd", "max_tokens": "tokens"}[key]
    assert 0 < s["spend"][spent] <= value
    # the log is closed consistently: it ends with the run's end, saying it stopped
    events = list(read_events(out / "events.jsonl"))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "stopped"
    assert s["spend"]["calls"] == logged_spend(out).calls


def test_no_call_sent_to_a_model_is_lost_when_the_budget_stops_the_run(write_scenario, tmp_path):
    out = tmp_path / "run"
    scenario = write_scenario(SCENARIO)
    assert run("run", scenario, "--out", out, "--set=budget.max_calls=25") == EXIT_BUDGET
    events = list(read_events(out / "events.jsonl"))
    answered = [e for e in events if isinstance(e, ModelResponded)]
    # the budget allowed 25 calls and the run stopped with nothing in flight: all 25 answered
    # and logged (requests parked at the budget were never sent)
    assert len(answered) == 25
    asked = {e.request_id for e in events if isinstance(e, ModelRequested)}
    assert {e.request_id for e in answered} <= asked


def test_the_exit_code_of_a_budget_stop_is_in_run_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "3 the [budget] was reached" in " ".join(capsys.readouterr().out.split())


# --- resuming ------------------------------------------------------------------------------


def test_resuming_a_run_stopped_at_its_budget_is_refused_until_the_budget_is_raised(
    write_scenario, tmp_path, capsys
):
    scenario = write_scenario(SCENARIO)
    out, whole = tmp_path / "run", tmp_path / "whole"
    assert run("run", scenario, "--out", whole) == 0
    assert run("run", scenario, "--out", out, "--set=budget.max_calls=30") == EXIT_BUDGET
    capsys.readouterr()
    before = (out / "events.jsonl").read_bytes()
    assert resume(out) == 2
    err = capsys.readouterr().err
    assert "max_calls reached" in err and "--set budget.max_calls=" in err
    assert (out / "events.jsonl").read_bytes() == before  # refused before anything is written
    assert resume(out, "--set", "budget.max_calls=100000") == 0
    assert (out / "results.csv").read_bytes() == (whole / "results.csv").read_bytes()
    # the spend is the whole run's: the same as the uninterrupted run's
    assert summary(out)["spend"] == summary(whole)["spend"]


def test_a_run_its_budget_stopped_short_of_the_limit_resumes_only_with_a_raised_budget(
    write_scenario, tmp_path, capsys
):
    # the budget stops the run when the next call may not fit: the spend is then below the
    # limit, and a resume with the same budget would stop again at once
    out = tmp_path / "run"
    args = ("run", write_scenario(SCENARIO), "--out", out, *PRICES, "--set=budget.max_usd=0.05")
    assert run(*args) == EXIT_BUDGET
    assert summary(out)["spend"]["usd"] < 0.05
    capsys.readouterr()
    assert resume(out) == 2
    err = capsys.readouterr().err
    assert "stopped at its [budget]" in err and "--set budget.max_usd=" in err
    assert resume(out, "--set", "budget.max_usd=1000") == 0


def test_the_budget_counts_the_spend_before_the_resume(write_scenario, tmp_path):
    scenario = write_scenario(SCENARIO)
    out = tmp_path / "run"
    assert run("run", scenario, "--out", out, "--set=budget.max_calls=30") == EXIT_BUDGET
    first = summary(out)["spend"]["calls"]
    assert 0 < first <= 30
    assert resume(out, "--set", "budget.max_calls=60") == EXIT_BUDGET
    s = summary(out)
    assert first < s["spend"]["calls"] <= 60  # 60 in all, not 60 more
    assert s["spend"]["calls"] == logged_spend(out).calls


def test_a_resumed_run_may_change_its_budget_and_nothing_else(write_scenario, tmp_path, capsys):
    scenario = write_scenario(SCENARIO)
    out = tmp_path / "run"
    assert run("run", scenario, "--out", out, "--set=budget.max_calls=30") == EXIT_BUDGET
    capsys.readouterr()
    assert resume(out, "--set", "budget.max_calls=100000", "--set", "seeds=[7]") == 2
    assert "seeds" in capsys.readouterr().err


# --- the projection ----------------------------------------------------------------------


def test_a_priced_run_says_its_projection_before_the_first_call(write_scenario, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", str(write_scenario(SCENARIO)), "--out", str(out), "--no-report"]
    assert main([*args, "--progress", "log", *PRICES]) == 0
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if "progress" in line)
    # the first progress line is drawn before any call ends (0 calls done) and says it
    assert "model_calls=0/" in first and "projected: ~" in first
    projected = summary(out)["projected"]
    assert projected["calls"] > 0 and 0 < projected["usd"] <= projected["usd_max"]


def test_an_unpriced_run_says_no_projection(write_scenario, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(write_scenario(SCENARIO)), "--out", str(out), "--progress", "log"]) == 0
    assert "projected:" not in capsys.readouterr().err


def roles(price: tuple[float, float], backend: str = "b") -> dict[str, RoleModel]:
    return {
        role: RoleModel(
            backend=backend,
            model="gpt-4o",
            input_price=price[0],
            output_price=price[1],
            params=SamplingParams(max_new_tokens=300),
        )
        for role in ROLES
    }


def test_the_projection_prices_its_tokens_at_each_roles_prices(write_scenario):
    resolved = load_run(write_scenario(SCENARIO))
    scenario = resolved.scenario
    plans = expand(scenario, resolved.catalog)

    def at(price: tuple[float, float]):
        return project(
            plans, 2, resolved.catalog, resolved.corpus, roles(price), {}, scenario.metrics.judge
        )

    free, priced = at((0.0, 0.0)), at((1.0, 0.0))
    assert not free.priced and priced.priced
    assert priced.usd == pytest.approx(priced.input_tokens / 1e6)
    out = at((0.0, 1.0))
    assert out.usd == pytest.approx(out.output_tokens / 1e6)
    assert out.usd_max == pytest.approx(out.output_tokens_max / 1e6)
    assert out.output_tokens <= out.output_tokens_max == pytest.approx(out.calls * 300, abs=300)
    assert free.limits_s is None  # no endpoint is rate-limited


def test_the_projected_time_is_the_slowest_endpoints_at_its_rate_limits(write_scenario):
    resolved = load_run(write_scenario(SCENARIO))
    plans = expand(resolved.scenario, resolved.catalog)
    layer = EndpointLayers(EndpointLimits(rpm=60, window_s=60.0))
    p = project(plans, 2, resolved.catalog, resolved.corpus, roles((0, 0)), {"b": layer}, False)
    assert p.limits_s == pytest.approx(p.calls, abs=1)  # one request a second
    assert p.bound_by == "user+writer+agent"  # no judge: its calls are none


# --- the layer ---------------------------------------------------------------------------


class Held:
    """A backend whose calls wait until the test lets each go."""

    def __init__(self) -> None:
        self.release = [anyio.Event() for _ in range(10)]
        self.started = 0

    async def complete(self, request: ModelRequest) -> Completion:
        i = self.started
        self.started += 1
        await self.release[i].wait()
        return Completion(text="ok", input_tokens=10, output_tokens=5)

    async def aclose(self) -> None:
        pass


def ask(n: int) -> ModelRequest:
    return ModelRequest(
        role="agent",
        purpose="infer",
        episode_id="e",
        instance=n,
        model="m",
        messages=[{"role": "user", "content": f"question {n}"}],
    )


@pytest.mark.anyio
async def test_calls_that_do_not_fit_wait_for_the_calls_in_flight_then_stop_the_run():
    stops: list[tuple[str, str]] = []
    backend = Held()
    state = BudgetState(BudgetSettings(max_calls=2))
    gateway = Gateway(
        {"b": backend}, on_stop=lambda kind, message: stops.append((kind, message)), budget=state
    )

    async def emit(event) -> None:
        pass

    outcomes: list[str] = []

    async def call(n: int) -> None:
        try:
            await gateway.complete("b", ask(n), emit)
            outcomes.append(f"answered {n}")
        except RunStopping:
            outcomes.append(f"stopped {n}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, 0)
        tg.start_soon(call, 1)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(call, 2)  # does not fit: two calls in flight, the budget has two
        tg.start_soon(call, 3)  # nor does this one
        await anyio.wait_all_tasks_blocked()
        assert backend.started == 2 and not stops
        backend.release[0].set()
        await anyio.wait_all_tasks_blocked()
        assert not stops  # one still in flight: the third waits
        backend.release[1].set()
    assert backend.started == 2
    # every call waiting at the budget stops with the run, and the run is stopped once
    assert sorted(outcomes) == ["answered 0", "answered 1", "stopped 2", "stopped 3"]
    assert [kind for kind, _ in stops] == ["budget"]
    assert "2 of 2 calls" in stops[0][1]
    assert state.spent == Spend(usd=0.0, calls=2, tokens=30)


@pytest.mark.anyio
async def test_a_call_that_fits_once_another_ends_goes_on():
    backend = Held()
    # each call may cost 1 call, 3 + 512 tokens: two fit in 1100 tokens, three do not, yet
    # after one ends (15 tokens spent) a third fits
    state = BudgetState(BudgetSettings(max_tokens=1100))
    gateway = Gateway({"b": backend}, on_stop=lambda kind, message: None, budget=state)

    async def emit(event) -> None:
        pass

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(gateway.complete, "b", ask(n), emit)
        await anyio.wait_all_tasks_blocked()
        assert backend.started == 2
        backend.release[0].set()
        await anyio.wait_all_tasks_blocked()
        assert backend.started == 3
        backend.release[1].set()
        backend.release[2].set()
    assert state.spent.calls == 3 and state.in_flight == 0


# --- the progress display ------------------------------------------------------------------


def test_the_progress_line_shows_the_spend_so_far_against_the_budget():
    from prose_sim.events import ModelResponded
    from prose_sim.results.collector import ResultsCollector
    from prose_sim.runtime.expected import PlanTotals
    from prose_sim.runtime.progress import Tracker, log_fields, render_line

    collector = ResultsCollector()
    collector.spend.observe(
        ModelResponded(
            request_id="r",
            instance=0,
            role="agent",
            purpose="infer",
            text="ok",
            input_tokens=100,
            output_tokens=20,
            latency_s=0.0,
            cost_usd=0.0125,
        )
    )
    totals = PlanTotals(episodes=1, instances=1, methods={})
    budgeted = Tracker(collector, totals, budget=BudgetSettings(max_usd=0.5, max_calls=10))
    line = render_line(budgeted.snapshot())
    assert "spent $0.0125 of $0.5000, 1 of 10 calls" in line
    assert log_fields(budgeted.snapshot())["spent"] == "$0.0125 of $0.5000, 1 of 10 calls"
    assert "spent $0.0125" in render_line(Tracker(collector, totals, priced=True).snapshot())
    assert "spent" not in render_line(Tracker(collector, totals).snapshot())  # free, no budget
