"""Live progress: totals and an ETA from the first tick, rates, failures, local servers."""

from __future__ import annotations

import io
import threading

import anyio
import pytest
from rich.console import Console

from prose_sim.cli import main
from prose_sim.config.methods import ProseSettings
from prose_sim.events import (
    EpisodeStarted,
    InstanceFinished,
    InstanceStarted,
    ModelFailed,
    ModelRequested,
    ModelResponded,
)
from prose_sim.models.backends.local import ServerLive
from prose_sim.results.collector import ResultsCollector
from prose_sim.runtime import progress
from prose_sim.runtime.expected import MethodTotals, PlanTotals, instance_calls, plan_totals
from prose_sim.runtime.plan import expand
from prose_sim.runtime.progress import (
    WARM_CALLS,
    ProgressDisplay,
    Tracker,
    bar_line,
    duration,
    log_fields,
    render_line,
)
from prose_sim.scenario import load_scenario, scenario_catalog
from tests.conftest import SCENARIOS

EP = "summarization/plume/prose/1/imdb"
TOTALS = PlanTotals(
    episodes=2, instances=4, methods={"prose": MethodTotals(instances=4, calls=40.0)}
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _ev(cls, seq, **fields):
    return cls(run_id="r", episode_id=EP, seq=seq, ts=0.0, **fields)


def _started(collector):
    collector.observe(
        _ev(
            EpisodeStarted,
            0,
            task="summarization",
            framework="plume",
            method="prose",
            seed=1,
            personas=["imdb"],
            instances=2,
            models={},
        )
    )
    collector.observe(
        _ev(InstanceStarted, 1, instance=0, persona="imdb", document_id="d", document="x")
    )


def _call(collector, seq, rid, answered=True):
    common = dict(request_id=rid, instance=0, role="agent", purpose="draft")
    collector.observe(_ev(ModelRequested, seq, model="m", request_hash="h", messages=[], **common))
    if answered:
        collector.observe(
            _ev(
                ModelResponded,
                seq + 1,
                text="t",
                input_tokens=30,
                output_tokens=10,
                latency_s=0.1,
                **common,
            )
        )


def test_the_first_tick_shows_the_totals_and_an_eta_field():
    line = render_line(Tracker(ResultsCollector(), TOTALS, clock=Clock()).snapshot())
    assert "instances 0/4" in line
    assert "calls 0/~40" in line
    assert "warming up: the first answers are being generated" in line


def test_rates_and_eta_from_the_calls_done_over_the_window():
    collector, clock = ResultsCollector(), Clock()
    tracker = Tracker(collector, TOTALS, clock=clock)
    _started(collector)
    _call(collector, 8, "first")
    tracker.snapshot()  # the first answer: the pace is measured from here
    for i in range(10):
        _call(collector, 10 + 2 * i, f"r{i}")
    clock.now += 5.0
    s = tracker.snapshot()
    assert s.calls_done == 11 and s.calls_per_s == 2.2 and s.tokens_per_s == 88.0
    assert s.eta_s == 14.5  # 29 calls left at 10 calls in 5 s
    assert (
        "ETA 14s" in render_line(s)
        and "2.2 calls/s" in render_line(s)
        and "88 tok/s" in render_line(s)
    )


def test_a_window_without_finished_calls_falls_back_to_the_run_rate_for_the_eta():
    collector, clock = ResultsCollector(), Clock()
    tracker = Tracker(collector, TOTALS, clock=clock)
    _started(collector)
    _call(collector, 8, "first")
    tracker.snapshot()
    for i in range(10):
        _call(collector, 10 + 2 * i, f"r{i}")
    clock.now += 10.0
    tracker.snapshot()
    clock.now += 90.0  # a long prompt-reading pause: no call ends in the last 30 s
    tracker.snapshot()
    clock.now += 1.0
    s = tracker.snapshot()
    assert s.calls_per_s == 0.0
    assert s.eta_s == pytest.approx(29 / (10 / 101.0))  # the pace since the first answer


def test_calls_in_flight_are_counted_and_keep_the_expectation_above_what_is_done():
    collector = ResultsCollector()
    tracker = Tracker(collector, PlanTotals(episodes=1, instances=1, methods={}), clock=Clock())
    _started(collector)
    _call(collector, 10, "r0")
    _call(collector, 20, "r1", answered=False)
    s = tracker.snapshot()
    assert s.in_flight == 1 and s.calls_expected == 2


def test_a_method_with_finished_instances_is_expected_at_its_observed_rate():
    collector = ResultsCollector()
    tracker = Tracker(collector, TOTALS, clock=Clock())
    _started(collector)
    for i in range(5):
        _call(collector, 10 + 2 * i, f"r{i}")
    collector.observe(_ev(InstanceFinished, 30, instance=0, status="ok"))
    s = tracker.snapshot()
    assert (
        s.instances_done == 1 and s.calls_expected == 20
    )  # 4 instances x 5 calls, not the prior 40


def test_no_failures_reads_as_a_zero():
    assert "failed 0" in render_line(Tracker(ResultsCollector(), TOTALS, clock=Clock()).snapshot())


def test_failures_so_far_are_shown():
    collector = ResultsCollector()
    tracker = Tracker(collector, TOTALS, clock=Clock())
    _started(collector)
    collector.observe(
        _ev(
            ModelRequested,
            5,
            request_id="x",
            instance=0,
            role="agent",
            purpose="draft",
            model="m",
            request_hash="h",
            messages=[],
        )
    )
    collector.observe(
        _ev(ModelFailed, 6, request_id="x", instance=0, role="agent", purpose="draft", error="boom")
    )
    collector.observe(_ev(InstanceFinished, 7, instance=0, status="failed"))
    s = tracker.snapshot()
    assert "failed 1 calls, 1 instances, 0 episodes" in render_line(s)
    assert log_fields(s)["failed_calls"] == 1 and log_fields(s)["failed_instances"] == 1


class FakeServer:
    def __init__(self, live):
        self.state = live

    def live(self):
        return self.state


def test_each_local_server_shows_its_queue_and_current_batch():
    server = FakeServer(
        ServerLive(model="smol", queued=5, batch=12, step=17, max_steps=64, busy_s=3.2)
    )
    tracker = Tracker(ResultsCollector(), TOTALS, [server], clock=Clock())
    assert "smol: 5 queued, batch 12 at step 17/64 after 3s" in render_line(tracker.snapshot())
    server.state = ServerLive(model="smol", queued=0, batch=3, step=0, max_steps=64, busy_s=75)
    assert "smol: 0 queued, batch 3 reading prompts for 1m15s" in render_line(tracker.snapshot())
    server.state = ServerLive(model="smol", queued=0, batch=0, step=0, max_steps=0)
    fields = log_fields(tracker.snapshot())
    assert fields["server[smol]"] == "0 queued, idle"


def test_before_enough_calls_have_ended_the_eta_says_it_is_warming_up():
    # a batch well under way is no pace yet: its first answers decide how long a call takes
    server = FakeServer(
        ServerLive(model="smol", queued=0, batch=8, step=16, max_steps=64, busy_s=20.0)
    )
    collector, clock = ResultsCollector(), Clock()
    tracker = Tracker(collector, TOTALS, [server], clock=clock)
    _started(collector)
    clock.now += 20.0
    _call(collector, 8, "first")
    tracker.snapshot()
    for i in range(WARM_CALLS - 2):
        _call(collector, 10 + 2 * i, f"r{i}")
    clock.now += 20.0
    s = tracker.snapshot()
    assert s.eta_s is None
    assert "warming up: the first answers are being generated" in render_line(s)
    assert log_fields(s)["eta"] == "warming up: the first answers are being generated"
    _call(collector, 100, "last")
    # the pace since the first answer: WARM_CALLS - 1 calls in 20 s
    assert tracker.snapshot().eta_s == pytest.approx((40 - WARM_CALLS) * 20.0 / (WARM_CALLS - 1))


def test_durations_read_as_a_person_would_say_them():
    assert [duration(x) for x in (None, 4.4, 245, 7800)] == ["estimating", "4s", "4m05s", "2h10m"]


def test_the_plan_totals_count_every_instance_and_estimate_calls_per_method():
    scenario = load_scenario(SCENARIOS / "quickstart.toml")
    totals = plan_totals(
        expand(scenario),
        scenario.demonstrations_per_user,
        scenario_catalog(scenario),
        "smollm2-135m-instruct",
        judge=True,
    )
    assert totals.episodes == 4 and totals.instances == 8
    # no_learning: user, draft, 4 PPCM, FPM = 7 calls an instance
    assert totals.methods["no_learning"].calls == 7 * 4


def test_prose_estimate_follows_its_knobs():
    one_step = ProseSettings(variant="1sc")
    full = ProseSettings(variant="full", num_refinement_steps=3)
    # first instance, 4 components, no judge: 2 + 1 refine + breakdown + 4 verdicts
    assert instance_calls("prose", one_step, "m", 0, 4, judge=False) == 8
    # full (iterate): 3 refine + 2 candidates
    assert instance_calls("prose", full, "m", 0, 4, judge=False) == 2 + 3 + 2 + 1 + 4
    # a later instance: coalesce, and verdicts on the earlier demonstration too
    assert instance_calls("prose", one_step, "m", 1, 4, judge=False) == 2 + 1 + 1 + 1 + 8


def test_the_log_lines_of_a_run_carry_totals_and_eta_from_the_first_line(
    write_scenario, tmp_path, capsys
):
    scenario = write_scenario(
        'name = "t"\nseeds = [1]\ndemonstrations_per_user = 2\n'
        '[tasks.summarization]\npersonas = ["imdb"]\n[methods.no_learning]\n[metrics]\nbertscore = ""\n'
    )
    assert (
        main(
            [
                "run",
                str(scenario),
                "--out",
                str(tmp_path / "run"),
                "--progress",
                "log",
                "--no-report",
            ]
        )
        == 0
    )
    first = next(line for line in capsys.readouterr().err.splitlines() if "progress" in line)
    for field in (
        "episodes=0/1",
        "instances=0/2",
        "model_calls=0/~14",
        "eta='warming up: the first answers are being generated'",
        "calls_per_s=",
        "failed_calls=0",
    ):
        assert field in first


@pytest.mark.anyio
async def test_a_local_server_reports_the_batch_it_reads_and_decodes(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from prose_sim.models.backends.local import LocalModelServer
    from prose_sim.models.local_loading import load_local_model
    from prose_sim.models.protocol import ModelRequest, SamplingParams
    from prose_sim.testing.tiny_model import tiny_test_model

    model, tokenizer, device, _ = load_local_model(
        str(tiny_test_model(tmp_path)), dtype="float32", device="cpu"
    )
    server = LocalModelServer(
        model, tokenizer, device, name="tiny", max_batch_size=8, max_wait_s=0.2
    )
    seen = []
    real = server.engine.model

    def spy(*args, **kwargs):  # each forward pass: what the server says it is doing
        seen.append(server.live())
        return real(*args, **kwargs)

    server.engine.model = spy
    requests = [
        ModelRequest(
            role="agent",
            purpose="draft",
            episode_id="e",
            instance=i,
            model="tiny",
            messages=[{"role": "user", "content": f"prompt {i}"}],
            params=SamplingParams(max_new_tokens=4),
        )
        for i in range(3)
    ]
    async with server:
        assert server.live().batch == 0
        async with anyio.create_task_group() as tg:
            for r in requests:
                tg.start_soon(server.complete, r)
    assert seen[0].batch >= 1 and seen[0].step == 0  # reading the prompts
    assert max(s.batch for s in seen) == 3  # the rows run together
    steps = [s.step for s in seen if s.step]
    assert steps == sorted(steps) and all(
        s.max_steps == 4 for s in seen if s.step
    )  # the lead row advances
    assert "reading prompts for" in render_line(
        Tracker(ResultsCollector(), TOTALS, [FakeServer(seen[0])], clock=Clock()).snapshot()
    )
    assert server.live().batch == 0  # idle again


def _busy_snapshot():
    server = FakeServer(
        ServerLive(
            model="smollm2-135m-instruct", queued=3, batch=5, step=17, max_steps=64, busy_s=9.0
        )
    )
    collector, clock = ResultsCollector(), Clock()
    tracker = Tracker(collector, TOTALS, [server], clock=clock)
    _started(collector)
    _call(collector, 8, "first")
    tracker.snapshot()
    for i in range(11):
        _call(collector, 10 + 2 * i, f"r{i}")
    collector.observe(_ev(InstanceFinished, 60, instance=0, status="ok"))
    clock.now += 83.0
    return tracker.snapshot()


@pytest.mark.parametrize("width", [80, 100, 140])
def test_the_bar_keeps_instances_elapsed_and_eta_and_cuts_server_detail_first(width):
    s = _busy_snapshot()
    line = bar_line(s, width)
    text = line.plain
    assert line.cell_len <= width
    assert "instances" in text and "1/4" in text and "1m23s" in text and "ETA " in text
    server = "smollm2-135m-instruct: 3 queued, batch 5 at step 17/64 after 9s"
    if server not in text:  # cut: everything before it is whole
        assert "calls 12/~" in text or width < 100
    wide = bar_line(s, 400).plain
    assert server in wide and "━" in wide
    assert text.rstrip("…") in wide or text.endswith("…")


def test_a_narrow_bar_gives_up_the_bar_before_the_counts():
    s = _busy_snapshot()
    text = bar_line(s, 40).plain
    assert text.startswith("instances 1/4 · 1m23s · ETA")


def test_the_eta_is_within_2x_on_a_recorded_quickstart_from_a_tenth_to_nine_tenths_done():
    """The quickstart's 150 requests (real prompts, answer lengths and dependency chains)
    served by the local continuous-batching server, each call's send and end time recorded
    (benchmarks/record_progress_trace.py); the ETA at every call's end is held to the true
    remaining time from a tenth of the calls to nine tenths (in the last tenth the few calls
    left end together, and the ETA overestimates those last seconds)."""
    import gzip
    import json

    from prose_sim.runtime.progress import eta_s
    from tests.conftest import ROOT

    path = ROOT / "benchmarks" / "traces" / "quickstart_progress.json.gz"
    calls = json.loads(gzip.decompress(path.read_bytes()))["calls"]
    total, end = len(calls), max(c["ended"] for c in calls)
    ended = sorted(c["ended"] for c in calls)
    checked = 0
    first = ended[0]
    for done, now in enumerate(ended, start=1):
        in_flight = sum(c["sent"] <= now < c["ended"] for c in calls)
        eta = eta_s(done, total - done, in_flight, done - 1, now - first)
        if done < WARM_CALLS:
            assert eta is None  # warming up: no number yet
            continue
        if 0.1 * total <= done <= 0.9 * total:
            truth = end - now
            assert eta is not None and truth / 2 <= eta <= truth * 2, (done, eta, truth)
            checked += 1
    assert checked >= 0.75 * total


class _Lines:
    """Stands for the structlog logger: keeps the progress lines drawn, and says when two are."""

    def __init__(self) -> None:
        self.fields: list[dict] = []
        self.two = threading.Event()

    def info(self, event: str, **fields) -> None:
        assert event == "progress"
        self.fields.append(fields)
        if len(self.fields) >= 2:
            self.two.set()


@pytest.mark.anyio
async def test_progress_lines_keep_coming_while_the_event_loop_is_blocked(monkeypatch):
    lines = _Lines()
    monkeypatch.setattr(progress, "log", lines)
    collector = ResultsCollector()
    _started(collector)
    _call(collector, 2, "r1")
    with ProgressDisplay(collector, TOTALS, "log", interval_s=0.01) as display:
        # the event loop's thread waits here without yielding, as in a long pass of the loop
        assert lines.two.wait(timeout=60), "fewer than two progress lines while the loop waited"
    assert not display.running
    assert lines.fields[0]["model_calls"] == "1/~40"
    assert lines.fields[0]["instances"] == "0/4"


def test_a_stopped_display_draws_no_more_lines(monkeypatch):
    lines = _Lines()
    monkeypatch.setattr(progress, "log", lines)
    display = ProgressDisplay(ResultsCollector(), TOTALS, "log", interval_s=0.01)
    display.start()
    assert lines.two.wait(timeout=60)
    display.stop()
    assert not display.running
    drawn = len(lines.fields)
    display.stop()  # stopping twice is harmless
    assert len(lines.fields) == drawn


def test_the_off_mode_starts_no_thread():
    with ProgressDisplay(ResultsCollector(), TOTALS, "off") as display:
        assert not display.running


@pytest.mark.anyio
async def test_the_bar_keeps_being_drawn_while_the_event_loop_is_blocked(monkeypatch):
    drawn: list[int] = []
    two = threading.Event()

    def counted_bar_line(s, width):
        drawn.append(s.calls_done)
        if len(drawn) >= 2:
            two.set()
        return bar_line(s, width)

    monkeypatch.setattr(progress, "bar_line", counted_bar_line)
    collector = ResultsCollector()
    _started(collector)
    _call(collector, 2, "r1")
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    bar = ProgressDisplay(collector, TOTALS, "bar", interval_s=0.01, console=terminal)
    with bar as display:
        assert two.wait(timeout=60), "the bar was not redrawn while the loop waited"
    assert not display.running
    assert drawn[0] == 1
