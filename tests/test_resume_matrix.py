"""The interruption matrix: kill -9 and SIGTERM at five points of a run, each resumed.

Two runs: the scripted one of tests/test_resume.py, and one whose every role is
served over HTTP by the loopback OpenAI-compatible server
(prose_sim/testing/chat_server.py, running in this test process, so it outlives
the killed run). Every interrupted run, resumed, gives a results.csv byte for
byte identical to the uninterrupted run's, with each task instance exactly once.
SIGTERM (and SIGHUP) also exit 143 (129) with the log whole, the summary of
what is done written and the resume command printed.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from test_resume import SLOW, check_each_instance_once, interrupt_at, lines, resume_run

from prose_sim.cli import main
from prose_sim.eventlog import read_log
from prose_sim.testing.chat_server import ChatServer

POINTS = [0.1, 0.3, 0.5, 0.7, 0.9]  # shares of the uninterrupted run's log lines
KEY_ENV = "PROSE_SIM_MATRIX_KEY"

# 8 episodes x 3 instances, every role over HTTP
API = """
name = "api-matrix"
seeds = [1, 2]
demonstrations_per_user = 3
concurrency = 3
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[metrics]
bertscore = ""
{models}
"""


def api_scenario(base_url: str) -> str:
    blocks = []
    for role in ("user", "agent", "judge"):
        blocks.append(
            f'[models.{role}]\nbackend = "openai"\nmodel = "m-{role}"\n'
            f'base_url = "{base_url}"\napi_key_env = "{KEY_ENV}"'
        )
    return API.format(models="\n".join(blocks))


@pytest.fixture(scope="module")
def server():
    with ChatServer(latency_s=0.01) as s:
        yield s


@pytest.fixture(scope="module", params=["scripted", "loopback"])
def baseline(request, tmp_path_factory):
    """(scenario file, uninterrupted run folder, its log's line count, instances, extra run args)."""
    root = tmp_path_factory.mktemp(request.param)
    scenario = root / "scenario.toml"
    extra: list[str] = []
    if request.param == "scripted":
        scenario.write_text(SLOW, encoding="utf-8")
        instances = 36
    else:
        mp = pytest.MonkeyPatch()
        request.addfinalizer(mp.undo)
        mp.setenv(KEY_ENV, "sk-matrix-not-a-real-key")  # inherited by the runs' processes
        mp.setenv("PROSE_SIM_CACHE", str(root / "cache"))
        scenario.write_text(
            api_scenario(request.getfixturevalue("server").base_url), encoding="utf-8"
        )
        extra = ["--no-cache"]  # resumed answers come from the log, never from the cache
        instances = 24
    reference = root / "run"
    assert (
        main(
            [
                "run",
                str(scenario),
                "--out",
                str(reference),
                "--progress",
                "off",
                "--no-report",
                *extra,
            ]
        )
        == 0
    )
    return scenario, reference, lines(reference / "events.jsonl"), instances, extra


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "SIGTERM"])
@pytest.mark.parametrize("share", POINTS)
def test_interrupted_then_resumed_gives_the_uninterrupted_results(
    baseline, tmp_path, sig, share, record_property
):
    scenario, reference, total, instances, extra = baseline
    out = tmp_path / "run"
    proc = interrupt_at(scenario, out, max(1, int(total * share)), sig, extra)
    record_property(
        "log_lines", f"{lines(out / 'events.jsonl')}/{total}"
    )  # (--junitxml: the matrix)
    record_property("exit", proc.returncode)
    if proc.returncode != 0:  # (0: it had finished before the signal came)
        assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 143), (
            proc.stderr_text
        )
    if sig == signal.SIGTERM and proc.returncode == 143:
        assert f"run --resume {out}" in proc.stderr_text and "Traceback" not in proc.stderr_text
        assert read_log(out / "events.jsonl")[1] is None  # flushed whole lines
        assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert resume_run(out, *extra) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    check_each_instance_once(out, instances)


def test_sighup_behaves_like_sigterm_and_exits_129(baseline, tmp_path):
    scenario, reference, total, _instances, extra = baseline
    out = tmp_path / "run"
    proc = interrupt_at(scenario, out, total // 2, signal.SIGHUP, extra)
    assert proc.returncode == 129 and f"run --resume {out}" in proc.stderr_text
    assert resume_run(out, *extra) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert os.path.exists(out / "summary.json")
