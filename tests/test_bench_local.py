"""``bench local``'s trace workload: a run's requests kept with their dependencies, replayed closed-loop."""

from __future__ import annotations

import json

import anyio
import pytest

from benchmarks import local_trace


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def requested(rid, episode, ts, role="agent", purpose="draft"):
    return {"kind": "model_requested", "request_id": rid, "instance": 0, "role": role, "purpose": purpose,
            "model": "m", "request_hash": "h", "messages": [{"role": "user", "content": f"prompt {rid}"}],
            "run_id": "r", "episode_id": episode, "seq": 0, "ts": ts}  # fmt: skip


def responded(rid, episode, ts, output_tokens=5, cached=False):
    return {"kind": "model_responded", "request_id": rid, "instance": 0, "role": "agent", "purpose": "draft",
            "text": "x", "input_tokens": 9, "output_tokens": output_tokens, "latency_s": 1.0, "cached": cached,
            "attempts": 1, "cost_usd": 0.0, "run_id": "r", "episode_id": episode, "seq": 0, "ts": ts}  # fmt: skip


def test_a_trace_keeps_each_request_s_dependencies_within_its_episode(tmp_path):
    log = write_log(tmp_path / "events.jsonl", [
        requested("a", "e1", 1.0), requested("x", "e2", 1.0),
        responded("a", "e1", 2.0, output_tokens=7), responded("x", "e2", 2.5),
        requested("b", "e1", 3.0, purpose="validate"), requested("c", "e1", 3.0, role="judge", purpose="judge_ppcm"),
        responded("b", "e1", 4.0), responded("c", "e1", 5.0),
        requested("d", "e1", 6.0), responded("d", "e1", 7.0, cached=True),  # a cache hit never reached a model
    ])  # fmt: skip
    trace = local_trace.from_event_log(log)
    by_prompt = {r.messages[0]["content"]: r for r in trace.requests}
    assert list(by_prompt) == ["prompt a", "prompt x", "prompt b", "prompt c"]
    assert by_prompt["prompt a"].after == [] and by_prompt["prompt a"].answer_tokens == 7
    assert by_prompt["prompt b"].after == [0] and by_prompt["prompt c"].after == [
        0
    ]  # sent together, after a
    assert by_prompt["prompt x"].after == []  # another episode's answer is no dependency
    # validation and the judge reason before their verdict: no response prefix, as the actors ask
    assert (
        by_prompt["prompt b"].response_prefix == "" and by_prompt["prompt c"].response_prefix == ""
    )
    local_trace.save(trace, tmp_path / "t.json.gz")
    assert local_trace.load(tmp_path / "t.json.gz") == trace


def test_the_bundled_trace_is_a_whole_quickstart_run():
    trace = local_trace.load()
    assert len(trace.requests) == 150
    assert len({r.episode for r in trace.requests}) == 8
    assert all(dep < i for i, r in enumerate(trace.requests) for dep in r.after)


class Recorder:
    """A server double: answers each request with its budget's worth of tokens, recording the order."""

    def __init__(self):
        self.order = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    async def complete(self, request):
        from prose_sim.models.protocol import Completion

        self.order.append(request.messages[0]["content"])
        await anyio.lowlevel.checkpoint()
        return Completion(text="x", input_tokens=1, output_tokens=request.params.max_new_tokens)


def test_replay_sends_a_request_only_after_what_it_waited_for(tmp_path):
    log = write_log(tmp_path / "events.jsonl", [
        requested("a", "e1", 1.0), responded("a", "e1", 2.0, output_tokens=3),
        requested("b", "e1", 3.0), responded("b", "e1", 4.0, output_tokens=4),
        requested("c", "e2", 1.0), responded("c", "e2", 9.0, output_tokens=5),
    ])  # fmt: skip
    trace = local_trace.from_event_log(log)
    server = Recorder()
    figures = anyio.run(local_trace.replay, server, trace)
    assert figures["requests"] == 3 and figures["generated_tokens"] == 12  # the real answer lengths
    assert server.order.index("prompt a") < server.order.index("prompt b")
    one = Recorder()
    anyio.run(lambda: local_trace.replay(one, trace, episodes=1))
    assert one.order == ["prompt a", "prompt b"]


def test_trace_replays_through_both_servers_give_the_trace_checks(tmp_path):
    pytest.importorskip("transformers")
    from benchmarks import local
    from prose_sim.models.local_loading import load_local_model
    from prose_sim.testing.tiny_model import tiny_test_model

    model, tokenizer, device, _ = load_local_model(str(tiny_test_model(tmp_path / "tiny")), dtype="float32",
                                                   device="cpu")  # fmt: skip
    events = []
    for e in ("e1", "e2"):
        events += [
            requested(f"{e}a", e, 1.0),
            responded(f"{e}a", e, 2.0, output_tokens=3),
            requested(f"{e}b", e, 3.0),
            requested(f"{e}c", e, 3.0),
            responded(f"{e}b", e, 4.0, output_tokens=6),
            responded(f"{e}c", e, 4.0, output_tokens=2),
        ]
    trace = local_trace.from_event_log(write_log(tmp_path / "events.jsonl", events))
    rows = local.measure_trace(model, tokenizer, device, trace=trace, log=None)
    assert [r["workload"] for r in rows] == ["trace static #1", "trace server #1"]
    assert all(r["n"] == 6 for r in rows) and rows[1]["padding_share"] == 0
    names = [c.name for c in local.checks(rows)]
    assert names[0].startswith("trace: tokens/s, new / static") and len(names) == 5
