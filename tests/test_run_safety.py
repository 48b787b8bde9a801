"""Run safety (issue 16): nothing lost, nothing silent.

Run folders are never clobbered and never shared by two live processes; what
retries cannot fix stops the run at once; signals and full disks end a run
with its log whole and resumable; no key the run read is ever persisted.
Each test reproduces the situation the issue reported.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from prose_sim.cli import main
from prose_sim.eventlog import read_log
from prose_sim.events import ModelFailed, RunFinished
from prose_sim.runfolder.lock import LOCK_NAME, RunLock
from prose_sim.testing.chat_server import ChatServer

FAKE_KEY = "sk-test-SAFETYKEY-0123456789abcdef"
KEY_ENV = "PROSE_SIM_SAFETY_KEY"

# 2 personas x 2 methods x 2 instances, scripted: about a second
SMALL = """
name = "small"
seeds = [1]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.oracle]
[metrics]
bertscore = ""
"""

# the same on the loopback OpenAI-compatible server: 4 episodes, 16 task instances' calls
API = """
name = "api"
seeds = [1]
demonstrations_per_user = 2
concurrency = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.oracle]
[metrics]
bertscore = ""
[retry]
attempts = 2
backoff_s = 0.01
max_backoff_s = 0.02
breaker_calls = 4
{models}
"""


def api_models(base_url: str) -> str:
    lines = []
    for role in ("user", "agent", "judge"):
        lines += [
            f"[models.{role}]",
            'backend = "openai"',
            f'model = "gpt-{role}"',
            f'base_url = "{base_url}"',
            f'api_key_env = "{KEY_ENV}"',
        ]
    return "\n".join(lines)


@pytest.fixture
def key(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    return FAKE_KEY


@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


def run(*args) -> int:
    return main(["run", *map(str, args), "--progress", "off", "--no-report"])


def err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# --- 1. run folders are never clobbered ------------------------------------------


def test_a_new_run_into_a_folder_holding_other_files_is_refused_and_touches_nothing(
    write_scenario, tmp_path, capsys
):
    path = write_scenario(SMALL)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my own results\n")
    (mine / "notes.txt").write_text("my notes\n")
    assert run(path, "--out", mine) == 2
    [line] = err_lines(capsys)
    assert "not a prose_sim run" in line and "notes.txt" in line and "results.csv" in line
    assert (mine / "results.csv").read_text() == "my own results\n"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "results.csv"]


def test_a_new_run_into_a_finished_or_unfinished_run_is_refused(write_scenario, tmp_path, capsys):
    path = write_scenario(SMALL)
    out = tmp_path / "run"
    assert run(path, "--out", out) == 0
    capsys.readouterr()
    assert run(path, "--out", out) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert run(path, "--out", out) == 2
    assert "unfinished: continue it with run --resume" in capsys.readouterr().err
    (out / "summary.json").unlink()  # killed before it had a summary
    assert run(path, "--out", out) == 2
    assert "unfinished: continue it with run --resume" in capsys.readouterr().err


def test_a_new_run_into_an_empty_folder_is_fine(write_scenario, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert run(write_scenario(SMALL), "--out", out) == 0
    assert (out / "results.csv").exists()


def test_a_live_run_lock_refuses_a_second_process_naming_its_pid(write_scenario, tmp_path, capsys):
    path = write_scenario(SMALL)
    out = tmp_path / "run"
    assert run(path, "--out", out) == 0
    (out / "summary.json").unlink()  # as if it had been interrupted
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from prose_sim.runfolder.lock import RunLock\nRunLock(Path(sys.argv[1])).acquire()\n"
            "print('locked', flush=True)\ntime.sleep(60)\n",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (out / "events.jsonl").read_bytes()
        assert main(["run", "--resume", str(out), "--progress", "off"]) == 2
        [line] = err_lines(capsys)
        assert f"pid {holder.pid}" in line and "in use" in line
        assert (out / "events.jsonl").read_bytes() == before  # nothing appended
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock is stale, and the resume takes it over
    assert main(["run", "--resume", str(out), "--progress", "off", "--no-report"]) == 0
    assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(write_scenario, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999999\n")  # no such process, and no OS lock held
    assert run(write_scenario(SMALL), "--out", out) == 0
    assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_the_lock_is_exclusive_between_open_files(tmp_path):
    from prose_sim.errors import UsageError

    with RunLock(tmp_path), pytest.raises(UsageError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # released: free again


# --- 2. fail fast; the circuit breaker; exit codes ---------------------------------


def reference_api_run(tmp_path, server) -> bytes:
    out = tmp_path / "reference"
    assert run(tmp_path / "api.toml", "--out", out, "--no-cache") == 0
    return (out / "results.csv").read_bytes()


def test_a_401_stops_the_run_at_once_with_one_line_exit_2_and_it_resumes_once_fixed(
    tmp_path, key, server, capsys
):
    (tmp_path / "api.toml").write_text(API.format(models=api_models(server.base_url)))
    server.faults.extend(["401"] * 1000)  # a wrong key: every request is refused
    out = tmp_path / "run"
    assert run(tmp_path / "api.toml", "--out", out, "--no-cache") == 2
    [line] = err_lines(capsys)
    assert "HTTP 401" in line and server.base_url in line and "models." in line
    assert f"run --resume {out}" in line and FAKE_KEY not in line
    assert len(server.requests) <= 2  # the calls in flight (concurrency 2), nothing more
    events, torn = read_log(out / "events.jsonl")
    assert torn is None and isinstance(events[-1], RunFinished) and events[-1].status == "stopped"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop"] == "fatal" and summary["status"] == "stopped"
    server.faults.clear()  # the key is fixed
    assert (
        main(["run", "--resume", str(out), "--progress", "off", "--no-report", "--no-cache"]) == 0
    )
    assert (out / "results.csv").read_bytes() == reference_api_run(tmp_path, server)


def test_an_unknown_model_404_is_fatal_too(tmp_path, key, server, capsys):
    (tmp_path / "api.toml").write_text(API.format(models=api_models(server.base_url + "/wrong")))
    assert run(tmp_path / "api.toml", "--out", tmp_path / "run", "--no-cache") == 2
    [line] = err_lines(capsys)
    assert "HTTP 404" in line and "/wrong" in line


def test_an_unreachable_endpoint_at_start_stops_the_run_exit_2(tmp_path, key, capsys):
    with ChatServer() as gone:
        url = gone.base_url  # a port that was just free: nothing listens once it stops
    (tmp_path / "api.toml").write_text(API.format(models=api_models(url)))
    assert run(tmp_path / "api.toml", "--out", tmp_path / "run", "--no-cache") == 2
    [line] = err_lines(capsys)
    assert "connection to" in line and url in line and "ConnectError" in line


def test_a_run_whose_calls_all_fail_500_is_stopped_by_the_circuit_breaker_exit_1(
    tmp_path, key, server, capsys
):
    (tmp_path / "api.toml").write_text(API.format(models=api_models(server.base_url)))
    server.faults.extend(["500"] * 1000)
    out = tmp_path / "run"
    assert run(tmp_path / "api.toml", "--out", out, "--no-cache") == 1
    [line] = err_lines(capsys)
    assert "last 4 calls all failed" in line and "HTTP 500" in line and "breaker_calls" in line
    # a role's 4th failed call trips it: at most 3 failed calls of each of the 3 roles, the 4th
    # and one more in flight, 2 attempts each (the uninterrupted run makes 46 calls)
    assert len(server.requests) <= (3 * 3 + 2) * 2
    events, torn = read_log(out / "events.jsonl")
    assert torn is None and sum(isinstance(e, ModelFailed) for e in events) >= 4
    server.faults.clear()
    assert (
        main(["run", "--resume", str(out), "--progress", "off", "--no-report", "--no-cache"]) == 0
    )
    assert (out / "results.csv").read_bytes() == reference_api_run(tmp_path, server)


def test_a_run_with_failed_instances_exits_1_and_says_how_many(write_scenario, tmp_path, capsys):
    text = (
        SMALL
        + "[retry]\nattempts = 1\nbreaker_calls = 0\n[models.judge.faults]\nfailure_rate = 1.0\n"
    )
    out = tmp_path / "run"
    assert run(write_scenario(text), "--out", out) == 1
    err = capsys.readouterr().err
    assert "8 of 8 task instances failed" in err


def test_breaker_calls_is_a_retry_key(write_scenario):
    from prose_sim.errors import UsageError
    from prose_sim.scenario import load_scenario

    assert load_scenario(write_scenario(SMALL)).retry.breaker_calls == 10
    assert (
        load_scenario(write_scenario(SMALL + "[retry]\nbreaker_calls = 3\n")).retry.breaker_calls
        == 3
    )
    with pytest.raises(UsageError, match=r"retry\.breaker_calls"):
        load_scenario(write_scenario(SMALL + "[retry]\nbreaker_calls = -1\n"))


# --- 3. signals ---------------------------------------------------------------------


def test_a_second_signal_exits_at_once():
    code = (
        "import os, signal, time\nfrom prose_sim.runtime.signals import exit_on_next_signal\n"
        "exit_on_next_signal()\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(30)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 143 and "SIGTERM again: exiting at once" in proc.stderr


# (SIGTERM and SIGHUP mid-run, then resume: tests/test_resume_matrix.py)


# --- 4. full disk -------------------------------------------------------------------


def test_a_full_disk_is_one_line_exit_1_the_log_whole_and_resume_works_once_freed(
    write_scenario, tmp_path, capsys, monkeypatch
):
    path = write_scenario(SMALL)
    reference = tmp_path / "reference"
    assert run(path, "--out", reference) == 0
    import prose_sim.eventlog as eventlog

    real_write, calls = os.write, []

    def filling_up(fd, data):  # the disk fills on the third batch, after half of it
        calls.append(len(data))
        if len(calls) == 3:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(eventlog.os, "write", filling_up)
    # batches by size, not by the consumer's polls: a third batch on any machine's speed
    # (a few events encoded at a time, so that a batch ends near 4 KiB)
    monkeypatch.setattr(eventlog, "FLUSH_BYTES", 4096)
    monkeypatch.setattr(eventlog, "WRITE_CHUNK", 4)
    out = tmp_path / "run"
    capsys.readouterr()
    assert run(path, "--out", out) == 1
    [line] = err_lines(capsys)
    assert f"{out / 'events.jsonl'}: cannot write: [Errno 28] No space left on device" in line
    assert f"run --resume {out}" in line and "Traceback" not in line
    events, torn = read_log(out / "events.jsonl")
    assert torn is None and events  # whole lines only: the half batch was cut back off
    monkeypatch.setattr(eventlog.os, "write", real_write)  # space freed
    assert main(["run", "--resume", str(out), "--progress", "off", "--no-report"]) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs; needs root, else the test is skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_filesystem_then_resume_after_growing_it(write_scenario, tmp_path, small_disk):
    path = write_scenario(SMALL)
    reference = tmp_path / "reference"
    assert run(path, "--out", reference) == 0
    out = small_disk / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prose_sim",
            "run",
            str(path),
            "--out",
            str(out),
            "--progress",
            "off",
            "--no-report",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert read_log(out / "events.jsonl")[1] is None
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    assert main(["run", "--resume", str(out), "--progress", "off", "--no-report"]) == 0
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


# --- 5. deep TOML -------------------------------------------------------------------


def test_a_deeply_nested_toml_file_is_one_clear_line(write_scenario, tmp_path, capsys):
    deep = SMALL + "extra = " + "[" * 50_000 + "]" * 50_000 + "\n"
    assert run(write_scenario(deep), "--out", tmp_path / "run") == 2
    [line] = err_lines(capsys)
    assert "invalid TOML: nested too deeply" in line and "scenario.toml" in line
    assert (
        main(
            [
                "run",
                str(write_scenario(SMALL)),
                "--set",
                "seeds=" + "[" * 50_000,
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )


# --- 7. secrets ---------------------------------------------------------------------


def test_a_key_a_server_echoes_back_in_its_answers_is_never_persisted(tmp_path, key, capsys):
    with ChatServer(answer=f"Preferences: short; your key is {FAKE_KEY} Verdict: yes") as echoing:
        (tmp_path / "api.toml").write_text(API.format(models=api_models(echoing.base_url)))
        out = tmp_path / "run"
        assert (
            main(["run", str(tmp_path / "api.toml"), "--out", str(out), "--progress", "off"]) == 0
        )
        assert all(r["authorization"] == f"Bearer {FAKE_KEY}" for r in echoing.requests)
    captured = capsys.readouterr()
    assert FAKE_KEY not in captured.out + captured.err
    assert "your key is ***" in (out / "events.jsonl").read_text()
    files = [f for f in list(out.rglob("*")) + list((tmp_path / "cache").rglob("*")) if f.is_file()]
    assert any(f.name == "responses.sqlite3" for f in files) and any(
        f.name == "report.md" for f in files
    )
    for file in files:
        assert FAKE_KEY.encode() not in file.read_bytes(), file


def test_the_log_writer_scrubs_a_remembered_key_from_any_event(tmp_path):
    from prose_sim import scrub
    from prose_sim.eventlog import EventLogWriter

    scrub.remember("sk-another-SECRET-value-42")
    scrub.remember("x")  # a placeholder key: too short to be a secret, never scrubbed
    writer = EventLogWriter(tmp_path / "events.jsonl")
    writer.write(
        ModelFailed(
            run_id="r",
            episode_id="e",
            seq=0,
            ts=0.0,
            request_id="q",
            instance=0,
            role="user",
            purpose="demonstrate",
            error="echo: sk-another-SECRET-value-42 x",
        )
    )
    writer.close()
    text = (tmp_path / "events.jsonl").read_text()
    assert "SECRET" not in text and "echo: *** x" in text
