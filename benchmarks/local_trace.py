"""The trace workload of ``bench local``: a real quickstart run's requests, replayed closed-loop.

A trace keeps, for every model request of a run's event log: its episode, the
messages, the response prefix the local backend was given, the real answer's
length in tokens, and which earlier requests of the episode had been answered
when it was sent (its dependencies: the protocol is sequential inside an
episode except for the requests it sends together, e.g. a validation sweep).

``replay`` sends the requests to a server exactly so: each episode's request
goes out as soon as the answers it waited for are in, and asks for exactly
the real answer's length (EOS ignored), so every server does the same work and
only scheduling differs. It measures generated tokens per wall second and the
p50 and p95 request latency.

``python -m benchmarks.local_trace runs/quickstart/events.jsonl out.json.gz`` makes a trace.
"""

from __future__ import annotations

import gzip
import statistics
import sys
import time
from pathlib import Path

import anyio
import msgspec

TRACE = Path(__file__).resolve().parent / "traces" / "quickstart.json.gz"


class TraceRequest(msgspec.Struct, frozen=True, kw_only=True):
    episode: str
    role: str
    purpose: str
    messages: list[dict[str, str]]
    response_prefix: str
    prompt_tokens: int  # as the run's server counted them
    answer_tokens: int
    after: list[int]  # indices (in this trace) of the requests whose answers it waited for


class Trace(msgspec.Struct, kw_only=True):
    source: str
    requests: list[TraceRequest]


def from_event_log(path: Path) -> Trace:
    """A trace of a run's local-model requests, from its ``events.jsonl``."""
    from prose_sim.actors.inferrers.base import FORMAT_PREFIX

    def prefix(role: str, purpose: str) -> str:  # as the actors ask (the log does not record it)
        return FORMAT_PREFIX.get(purpose, "") if role == "agent" else ""  # the judge reasons first

    requested: dict[str, dict] = {}
    answered: dict[str, dict] = {}
    order: list[str] = []
    with open(path, "rb") as lines:
        for line in lines:
            event = msgspec.json.decode(line)
            if event.get("kind") == "model_requested":
                requested[event["request_id"]] = event
                order.append(event["request_id"])
            elif event.get("kind") == "model_responded" and not event.get("cached"):
                answered[event["request_id"]] = event
    order = [rid for rid in order if rid in answered]
    index = {rid: i for i, rid in enumerate(order)}
    requests = []
    for rid in order:
        asked, answer = requested[rid], answered[rid]
        episode = asked["episode_id"]
        after = [
            index[other] for other in order[: index[rid]]
            if requested[other]["episode_id"] == episode and answered[other]["ts"] <= asked["ts"]
        ]  # fmt: skip
        requests.append(TraceRequest(
            episode=episode, role=asked["role"], purpose=asked["purpose"], messages=asked["messages"],
            response_prefix=prefix(asked["role"], asked["purpose"]),
            prompt_tokens=answer["input_tokens"], answer_tokens=answer["output_tokens"], after=after,
        ))  # fmt: skip
    return Trace(source=str(path), requests=requests)


def save(trace: Trace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(msgspec.json.encode(trace), mtime=0))


def load(path: Path = TRACE) -> Trace:
    return msgspec.json.decode(gzip.decompress(path.read_bytes()), type=Trace)


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


async def replay(server, trace: Trace, *, episodes: int | None = None) -> dict[str, float]:
    """Send ``trace``'s requests to ``server`` closed-loop; tokens/s and latency percentiles."""
    from prose_sim.models.protocol import ModelRequest, SamplingParams

    names = list(dict.fromkeys(r.episode for r in trace.requests))[: episodes or None]
    chosen = {name for name in names}
    done = [anyio.Event() for _ in trace.requests]
    latencies: list[float] = []
    generated = 0

    async def one(i: int, item: TraceRequest) -> None:
        nonlocal generated
        for dep in item.after:
            await done[dep].wait()
        request = ModelRequest(
            role=item.role, purpose=item.purpose, episode_id=item.episode, instance=0, model="trace",
            messages=item.messages, params=SamplingParams(max_new_tokens=max(1, item.answer_tokens)),
            response_prefix=item.response_prefix,
        )  # fmt: skip
        sent = time.perf_counter()
        completion = await server.complete(request)
        latencies.append(time.perf_counter() - sent)
        generated += completion.output_tokens
        done[i].set()

    started = time.perf_counter()
    async with server, anyio.create_task_group() as tg:
        for i, item in enumerate(trace.requests):
            if item.episode in chosen:
                tg.start_soon(one, i, item)
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "generated_tokens": generated,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(generated / wall, 2),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.local_trace EVENTS_JSONL OUT_JSON_GZ")
    built = from_event_log(Path(sys.argv[1]))
    save(built, Path(sys.argv[2]))
    print(f"{len(built.requests)} requests from {built.source} -> {sys.argv[2]}")
