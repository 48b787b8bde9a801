"""Decode-step and prompt-reading speed of the local engine at 1 and 2 torch threads.

Loads the embedded SmolLM2-135M on the CPU, then for each thread count (alternated, twice,
in one process so machine noise hits both alike) runs an ``Engine`` with 1, 4 and 8 rows of
a ~240-token prompt and 24 new tokens, and prints prompt tokens/s and ms per decode step:

    python benchmarks/local_threads.py
    OMP_WAIT_POLICY=PASSIVE python benchmarks/local_threads.py   # OpenMP threads that sleep

Run it once on an idle machine and once while something else keeps the cores busy: the
second is where torch's default thread count loses (docs/performance.md).
"""

from __future__ import annotations

import os
import time

import torch

from prose_sim.models.backends.scheduler import Engine, Sequence
from prose_sim.models.local_loading import load_local_model
from prose_sim.models.protocol import SamplingParams


def main() -> None:
    model, tokenizer, _, _ = load_local_model(
        "smollm2-135m-instruct", dtype="float32", device="cpu"
    )
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    for _ in range(2):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cells = []
            for rows in (1, 4, 8):
                engine = Engine(model, tokenizer, "cpu")
                for i in range(rows):
                    prompt = tokenizer.encode(
                        f"Write a long story number {i} about cats and dogs. " * 20
                    )
                    engine.submit(
                        Sequence(
                            prompt=prompt, params=SamplingParams(max_new_tokens=24, temperature=0.0)
                        )
                    )
                began = time.perf_counter()
                engine.step()  # the prompts, and each row's first token
                read = time.perf_counter()
                steps = 0
                while engine.busy:
                    engine.step()
                    steps += 1
                done = time.perf_counter()
                cells.append(
                    f"rows {rows}: prompts {round(rows * len(prompt) / (read - began))} tok/s, "
                    f"decode {round((done - read) / max(steps, 1) * 1000)} ms/step"
                )
            print(f"OMP_WAIT_POLICY={policy} threads={threads} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
