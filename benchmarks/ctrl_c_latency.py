"""How long a run takes to act on Ctrl-C with many episodes in flight, and whether its progress
lines keep their period meanwhile.

    python benchmarks/ctrl_c_latency.py [--episodes 10000] [--after-s 20]

Runs ``scenarios/scale.toml`` (scripted backend, ~20 ms a call) with enough seeds for the
episodes asked (36 episodes a seed, all in flight at once) as ``python -m prose_sim run
--progress log``, sends SIGINT ``--after-s`` seconds after the first progress line, and
measures the seconds from the signal to the process's exit (the log flushed, results.csv and
summary.json written), and to the "interrupted ..." line (the run has stopped; the rest is the
interpreter's exit). Also reported: the longest gap between two progress lines before the
signal (their period is 5 s), the median gap, and the exit code (130 = stopped by SIGINT). Target (issue 25):
<= 2 s to exit at 10,000 episodes in flight. A measurement, not a test: run it on a quiet
machine and compare before/after in one sitting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPISODES_PER_SEED = 36  # scale.toml: 9 users x 2 frameworks x 2 methods


def measure(episodes: int, after_s: float) -> dict[str, object]:
    seeds = math.ceil(episodes / EPISODES_PER_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "prose_sim",
            "run",
            str(ROOT / "scenarios" / "scale.toml"),
            "--out",
            str(Path(tmp) / "run"),
            "--progress",
            "log",
            "--no-report",
            "--set",
            f"seeds={list(range(1, seeds + 1))}",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        assert proc.stderr is not None
        progress: list[float] = []
        said: list[float] = []  # when the "interrupted ..." line came (the run had stopped)
        tail: list[str] = []
        first = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                tail.append(line)
                del tail[:-20]
                if line.startswith("interrupted") and not said:
                    said.append(time.monotonic())
                if "progress" in line:
                    progress.append(time.monotonic())
                    first.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not first.wait(timeout=600):
            proc.kill()
            raise RuntimeError("no progress line within 600 s:\n" + "".join(tail))
        time.sleep(after_s)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
        exited = time.monotonic()
        reader.join(timeout=5)
        before = [t for t in progress if t <= signalled]
        gaps = [b - a for a, b in itertools.pairwise(before)]
        return {
            "episodes": seeds * EPISODES_PER_SEED,
            "start_to_first_progress_s": round(progress[0] - started, 2),
            "signal_after_first_progress_s": after_s,
            "progress_lines_before_signal": len(before),
            "longest_progress_gap_s": round(max(gaps), 2) if gaps else None,
            "median_progress_gap_s": round(statistics.median(gaps), 2) if gaps else None,
            "signal_to_interrupted_line_s": round(said[0] - signalled, 2) if said else None,
            "signal_to_exit_s": round(exited - signalled, 2),
            "exit_code": code,
            "target_s": 2.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--after-s", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.episodes, args.after_s)))


if __name__ == "__main__":
    main()
