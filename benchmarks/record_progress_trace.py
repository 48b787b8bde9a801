"""Record when each call of the quickstart's workload ends, for the ETA test.

Replays ``benchmarks/traces/quickstart.json.gz`` (the 150 model requests of a real quickstart
run: prompts, response prefixes, real answer lengths and each episode's dependency chain) closed-
loop through the local continuous-batching server, as ``bench local`` does, and writes the
moment each request was sent and answered (seconds from the start) to
``benchmarks/traces/quickstart_progress.json.gz``. ``tests/test_progress.py`` replays those
moments through the progress display's ETA and holds it within 2x of the true remaining time
once a tenth of the calls are done.

    python -m benchmarks.record_progress_trace [MODEL]    # from the repository root

MODEL: a local model folder or the embedded ``smollm2-135m-instruct``; default: the tiny
random-weight test model (``prose_sim.testing.tiny_model``), which serves the same workload in
about a minute (the embedded model takes the quickstart's time).
"""

from __future__ import annotations

import gzip
import platform
import sys
import tempfile
import time
from pathlib import Path

import anyio
import msgspec

from benchmarks.local_trace import TRACE, TraceRequest, load

OUT = Path(__file__).resolve().parent / "traces" / "quickstart_progress.json.gz"


class Call(msgspec.Struct, frozen=True):
    sent: float
    ended: float


class ProgressTrace(msgspec.Struct, kw_only=True):
    source: str
    model: str
    machine: str
    calls: list[Call]  # in the trace's request order


async def record(server, requests: list[TraceRequest]) -> list[Call]:
    from prose_sim.models.protocol import ModelRequest, SamplingParams

    done = [anyio.Event() for _ in requests]
    calls: dict[int, Call] = {}
    started = time.perf_counter()

    async def one(i: int, item: TraceRequest) -> None:
        for dep in item.after:
            await done[dep].wait()
        request = ModelRequest(
            role=item.role, purpose=item.purpose, episode_id=item.episode, instance=0,
            model="trace", messages=item.messages,
            params=SamplingParams(max_new_tokens=max(1, item.answer_tokens)),
            response_prefix=item.response_prefix,
        )  # fmt: skip
        sent = time.perf_counter() - started
        await server.complete(request)
        calls[i] = Call(sent=round(sent, 3), ended=round(time.perf_counter() - started, 3))
        done[i].set()

    async with server, anyio.create_task_group() as tg:
        for i, item in enumerate(requests):
            tg.start_soon(one, i, item)
    return [calls[i] for i in range(len(requests))]


def main() -> None:
    from prose_sim.models.backends.local import LocalModelServer
    from prose_sim.models.local_loading import load_local_model

    trace = load(TRACE)
    if len(sys.argv) > 1:
        name = sys.argv[1]
        model, tokenizer, device, _ = load_local_model(name, dtype="float32", device="cpu")
    else:
        from prose_sim.testing.tiny_model import tiny_test_model

        name = "tiny random-weight test model (prose_sim.testing.tiny_model)"
        path = tiny_test_model(Path(tempfile.mkdtemp()) / "tiny")
        model, tokenizer, device, _ = load_local_model(str(path), dtype="float32", device="cpu")
        # its tokenizer spells the quickstart's prompts in more tokens than SmolLM2's: room for
        # them (rotary positions: no table to outgrow)
        model.config.max_position_embeddings = 8192
        tokenizer.model_max_length = 8192
    server = LocalModelServer(model, tokenizer, device, name="trace")
    calls = anyio.run(record, server, trace.requests)
    out = ProgressTrace(
        source=f"{TRACE.name} ({trace.source})",
        model=name,
        machine=f"{platform.machine()}, {platform.python_version()}",
        calls=calls,
    )
    OUT.write_bytes(gzip.compress(msgspec.json.encode(out), mtime=0))
    print(f"{len(calls)} calls in {max(c.ended for c in calls):.1f} s -> {OUT}")


if __name__ == "__main__":
    main()
