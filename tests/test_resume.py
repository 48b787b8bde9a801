"""Resume, replay and interruption: nothing lost, nothing duplicated, nothing paid twice."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time

import anyio
import msgspec
import pytest
from conftest import ROOT

from prose_sim.cli import main
from prose_sim.eventlog import read_events, read_log
from prose_sim.events import (
    InstanceFinished,
    InstanceStarted,
    ModelRequested,
    RunFinished,
    RunResumed,
)
from prose_sim.runtime.replay import first_divergence, replay_run

# 12 episodes x 3 instances on the scripted backend, paced by a small simulated latency so that
# a run can be interrupted at a given share of its log
SLOW = """
name = "slow"
seeds = [1, 2]
demonstrations_per_user = 3
concurrency = 3
[tasks.summarization]
personas = ["cnn_dailymail", "imdb", "wikipedia"]
[methods.no_learning]
[methods.prose]
[metrics]
bertscore = ""
[models.user]
latency_s = 0.01
[models.agent]
latency_s = 0.01
[models.judge]
latency_s = 0.01
"""


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prose_sim", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


class LineCount:
    """A growing file's line count, reading only what was appended since the last look (a
    poll that re-read the whole log every few milliseconds spent more CPU than the run)."""

    def __init__(self, path):
        self.path, self.offset, self.count = path, 0, 0

    def __call__(self) -> int:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return 0
        self.offset += len(chunk)
        self.count += chunk.count(b"\n")
        return self.count


def wait_for_lines(proc: subprocess.Popen, path, at_lines: int, timeout_s: float = 60) -> None:
    """Until the log at ``path`` holds ``at_lines`` lines or ``proc`` has ended; fails past
    ``timeout_s``."""
    count, deadline = LineCount(path), time.monotonic() + timeout_s
    while count() < at_lines and proc.poll() is None:
        assert time.monotonic() < deadline, f"{path}: {count.count} of {at_lines} lines"
        time.sleep(0.005)


def interrupt_at(scenario, out, at_lines: int, sig=signal.SIGKILL, extra=()) -> subprocess.Popen:
    """Start a run and send ``sig`` once its log holds ``at_lines`` lines (its stderr: ``stderr_text``)."""
    proc = start("run", scenario, "--out", out, "--progress", "off", "--no-report", *extra)
    wait_for_lines(proc, out / "events.jsonl", at_lines)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, proc.stderr_text = proc.communicate(timeout=60)
    return proc


def resume_run(out, *extra) -> int:
    """``run --resume`` in this process: the interrupted run was its own process, and a resume
    reads everything from the run folder, so a second interpreter start-up adds nothing."""
    return main(["run", "--resume", str(out), "--progress", "off", "--no-report", *extra])


def check_each_instance_once(run_dir, expected: int) -> None:
    events = list(read_events(run_dir / "events.jsonl"))
    started = collections.Counter(
        (e.episode_id, e.instance) for e in events if isinstance(e, InstanceStarted)
    )
    finished = collections.Counter(
        (e.episode_id, e.instance) for e in events if isinstance(e, InstanceFinished)
    )
    assert len(started) == len(finished) == expected
    assert set(started.values()) == set(finished.values()) == {1}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("baseline")
    scenario = root / "slow.toml"
    scenario.write_text(SLOW, encoding="utf-8")
    assert (
        main(["run", str(scenario), "--out", str(root / "run"), "--progress", "off", "--no-report"])
        == 0
    )
    total = lines(root / "run" / "events.jsonl")
    return scenario, root / "run", total


@pytest.mark.parametrize("share", [0.0, 0.15, 0.35, 0.55, 0.75, 0.95])
def test_kill_9_then_resume_gives_the_uninterrupted_results(baseline, tmp_path, share):
    scenario, reference, total = baseline
    out = tmp_path / "run"
    proc = interrupt_at(scenario, out, max(1, int(total * share)))
    assert proc.returncode == -signal.SIGKILL
    before = list(read_log(out / "events.jsonl")[0])
    assert resume_run(out) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    check_each_instance_once(out, 36)
    # answers already given were not asked again
    after = list(read_events(out / "events.jsonl"))
    [resume] = [e for e in after if isinstance(e, RunResumed)] or [None]
    if resume is not None and share > 0.3:
        assert resume.answers_recorded > 0 or resume.episodes_done > 0
    asked_before = sum(isinstance(e, ModelRequested) for e in before)
    assert asked_before <= sum(isinstance(e, ModelRequested) for e in after)


def test_a_torn_last_line_is_dropped_and_reported(baseline, tmp_path, capsys):
    scenario, reference, total = baseline
    out = tmp_path / "run"
    interrupt_at(scenario, out, total // 2)
    with open(out / "events.jsonl", "ab") as log:
        log.write(b'{"kind":"model_responded","run_id":"x","epis')  # cut mid-line
    _events, torn = read_log(out / "events.jsonl")
    assert torn is not None and torn.length > 0
    assert main(["run", "--resume", str(out), "--progress", "off", "--no-report"]) == 0
    assert "torn last line" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert read_log(out / "events.jsonl")[1] is None


def test_ctrl_c_flushes_the_log_and_prints_the_resume_command(baseline, tmp_path):
    scenario, reference, total = baseline
    out = tmp_path / "run"
    proc = start("run", scenario, "--out", out, "--progress", "off", "--no-report")
    wait_for_lines(proc, out / "events.jsonl", total // 3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"run --resume {out}" in stderr and "Traceback" not in stderr
    events, torn = read_log(out / "events.jsonl")
    assert torn is None and events  # flushed whole lines
    # the run's end is logged last, nothing after it, and summary.json says what is done
    assert isinstance(events[-1], RunFinished) and events[-1].status == "interrupted"
    assert msgspec.json.decode((out / "summary.json").read_bytes())["status"] == "interrupted"
    assert main(["run", "--resume", str(out), "--progress", "off", "--no-report"]) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def test_replay_reproduces_results_byte_for_byte_without_calling_a_model(baseline, tmp_path):
    _, reference, _ = baseline
    outcome = anyio.run(lambda: replay_run(reference, tmp_path / "replay", progress="off"))
    assert outcome.identical and outcome.unrecorded_calls == 0 and outcome.divergence == ""
    assert outcome.run.answers_from_log == outcome.run.model_calls > 0
    assert (tmp_path / "replay" / "results.csv").read_bytes() == (
        reference / "results.csv"
    ).read_bytes()


def test_replay_names_the_first_diverging_event(baseline, tmp_path, monkeypatch):
    _, reference, _ = baseline
    import prose_sim.templating as templating

    real = templating.render_filled

    def changed(name, texts, **context):  # a judge prompt edited since the run was recorded
        text = real(name, texts, **context)
        return text + "\nBe concise." if name == "judge_fpm" else text

    monkeypatch.setattr("prose_sim.actors.judge.render_filled", changed)
    outcome = anyio.run(lambda: replay_run(reference, tmp_path / "replay", progress="off"))
    assert not outcome.identical and outcome.unrecorded_calls > 0
    assert "model_requested" in outcome.divergence and "request_hash" in outcome.divergence


def test_first_divergence_ignores_ids_and_times():
    from prose_sim.events import InstanceFinished as F

    a = [F(run_id="a", episode_id="e", seq=0, ts=1.0, instance=0, status="ok")]
    b = [F(run_id="b", episode_id="e", seq=0, ts=2.0, instance=0, status="ok")]
    c = [F(run_id="b", episode_id="e", seq=0, ts=2.0, instance=0, status="failed")]
    assert first_divergence(a, b) is None
    assert "status='ok'" in first_divergence(a, c)


def test_resume_refuses_a_changed_scenario_naming_what_changed(baseline, tmp_path, capsys):
    scenario, _reference, total = baseline
    out = tmp_path / "run"
    interrupt_at(scenario, out, total // 2)
    code = main(
        ["run", str(scenario), "--resume", str(out), "--set", "models.agent.temperature=0.7"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "models.agent.temperature: 0.0 in the run, 0.7 now" in err
        and len(err.strip().splitlines()) == 1
    )


def test_resume_refuses_an_edited_scenario_file(baseline, tmp_path, capsys):
    scenario, _reference, total = baseline
    out = tmp_path / "run"
    interrupt_at(scenario, out, total // 2)
    path = out / "scenario.toml"
    path.write_text(
        path.read_text().replace("demonstrations_per_user = 3", "demonstrations_per_user = 2")
    )
    assert main(["run", "--resume", str(out)]) == 2
    assert "edited after the run began" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "no such run folder"),
        (lambda d: d.mkdir(), "not a prose_sim run folder"),
    ],
)
def test_resume_and_replay_of_a_missing_or_foreign_folder_exit_2(tmp_path, capsys, setup, message):
    target = tmp_path / "r"
    setup(target)
    assert main(["run", "--resume", str(target)]) == 2
    assert message in capsys.readouterr().err
    assert main(["replay", str(target)]) == 2
    assert message in capsys.readouterr().err


def test_a_corrupt_log_exits_2_naming_the_line(baseline, tmp_path, capsys):
    _, reference, _ = baseline
    out = tmp_path / "copy"
    out.mkdir()
    (out / "scenario.toml").write_bytes((reference / "scenario.toml").read_bytes())
    good = (reference / "events.jsonl").read_bytes().split(b"\n")
    good[3] = b'{"kind": "something_else"}'
    (out / "events.jsonl").write_bytes(b"\n".join(good))
    assert main(["run", "--resume", str(out)]) == 2
    assert f"{out / 'events.jsonl'}:4: not a prose_sim event" in capsys.readouterr().err
    assert main(["report", str(out)]) == 2
