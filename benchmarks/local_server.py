"""Benchmark: the local model server against one-at-a-time and an ideal padded batch.

A thin command-line wrapper over ``benchmarks.local`` (where the
measurement lives; ``python -m benchmarks local`` runs it as a suite).
For each N, the same N chat prompts are decoded greedily to the same number of
new tokens: (a) one ``generate`` per request, one after another; (b) one
padded ``generate`` on all N; (c) N concurrent calls to LocalModelServer. It
prints tokens/s of each and the ratios c/a and c/b, and writes JSON (one row
per N: n, tokens_per_s_*, ratio_vs_sequential, ratio_vs_ideal_batch) with --json.

    python benchmarks/local_server.py                     # SmolLM2-135M on this CPU
    python benchmarks/local_server.py --random-qwen7b --n 1,16,64,256 --dtype bfloat16   # GPU check

EOS is ignored (every request decodes exactly --new-tokens). With
--sequential-sample K, (a) is timed once on the first K requests and its rate
is used for every N (a big N one at a time takes too long).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.local import main

if __name__ == "__main__":
    main()
