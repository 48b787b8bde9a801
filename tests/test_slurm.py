"""The Slurm recipe (examples/slurm/) on a real single-node Slurm: a job array of shards and a
merge job that depends on it; a requeued shard resumes. Skipped, saying why, where Slurm cannot
start here (its packages missing, not root)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from test_resume import SLOW as RESUME_SLOW

from prose_sim.cli import main
from prose_sim.runfolder import RunFolder

SLURM = ROOT / "examples" / "slurm"

GRID = """
name = "grid"
seeds = [1, 2]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb", "wikipedia"]
[methods.no_learning]
[methods.cipher1]
[methods.prose]
[metrics]
bertscore = ""
"""

# paced by a simulated latency (five times test_resume's), so that a shard can be requeued
# while it runs
SLOW = RESUME_SLOW.replace("latency_s = 0.01", "latency_s = 0.05")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node Slurm (examples/slurm/local_cluster.sh); its environment."""
    folder = tmp_path_factory.mktemp("slurm")
    ports = {"SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    started = subprocess.run(
        ["bash", str(SLURM / "local_cluster.sh"), "start", str(folder)],
        env={**os.environ, **ports},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        pytest.skip(f"Slurm could not start here: {started.stderr.strip()[-300:]}")
    env = {
        **os.environ,
        "SLURM_CONF": str(folder / "slurm.conf"),
        "PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
    }
    yield env
    subprocess.run(["bash", str(SLURM / "local_cluster.sh"), "stop", str(folder)], timeout=60)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unsharded(tmp_path: Path, text: str) -> bytes:
    scenario = tmp_path / "whole.toml"
    scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "whole"
    assert main(["run", str(scenario), "--out", str(out), "--progress", "off", "--no-report"]) == 0
    return RunFolder(out).results()


def submit(env, scenario: Path, runs: Path, n: int) -> subprocess.Popen:
    """submit.sh with WAIT=1: ends when the merge job ends."""
    return subprocess.Popen(
        ["bash", str(SLURM / "submit.sh"), str(scenario), str(runs), str(n)],
        env={**env, "WAIT": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_job_array_of_4_shards_merged_equals_the_unsharded_run(slurm, tmp_path):
    scenario = tmp_path / "grid.toml"
    scenario.write_text(GRID, encoding="utf-8")
    runs = tmp_path / "runs"
    out, err = submit(slurm, scenario, runs, 4).communicate(timeout=600)
    assert "array job" in out, err
    merged = RunFolder(runs / "merged")
    assert merged.results() == unsharded(tmp_path, GRID), (runs / "merge.out").read_text()
    assert (runs / "merged" / "report.md").is_file()  # the merge job wrote its report
    for k in range(1, 5):
        assert (runs / f"shard-{k}-of-4" / "events.jsonl").is_file()


def test_a_requeued_shard_resumes_and_the_merge_equals_the_unsharded_run(slurm, tmp_path):
    scenario = tmp_path / "slow.toml"
    scenario.write_text(SLOW, encoding="utf-8")
    runs = tmp_path / "runs"
    job = submit(slurm, scenario, runs, 2)
    array = None
    log = runs / "shard-1-of-2" / "events.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until shard 1 is under way
        if log.is_file() and log.read_bytes().count(b"\n") > 30:
            break
        time.sleep(0.05)
    else:
        pytest.fail("shard 1 did not start")
    array = re.search(r"array job (\d+)", job.stdout.readline() if job.stdout else "")
    assert array is not None
    task = f"{array.group(1)}_1"
    # Slurm sends SIGTERM, then queues the task again, its start delayed (moved to now here)
    subprocess.run(["scontrol", "requeue", task], env=slurm, check=True, timeout=60)
    while time.monotonic() < deadline:
        reason = subprocess.run(
            ["squeue", "-h", "-j", task, "-o", "%r"], env=slurm, capture_output=True, text=True
        ).stdout.strip()
        if reason == "BeginTime":
            break
        time.sleep(0.05)
    subprocess.run(
        ["scontrol", "update", f"JobId={task}", "StartTime=now"], env=slurm, check=True, timeout=60
    )
    job.communicate(timeout=600)
    said = (runs / "shard-1-of-2.out").read_text()
    assert "interrupted (SIGTERM)" in said
    served = re.search(r"resumed: .* ([\d,]+) answers served from the log", said)
    assert served is not None and int(served.group(1).replace(",", "")) > 0
    assert RunFolder(runs / "merged").results() == unsharded(tmp_path, SLOW)
