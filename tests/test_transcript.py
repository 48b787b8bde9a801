"""`prompts show`: each answer right after its own request, in request order."""

from __future__ import annotations

from prose_sim.events import EpisodeStarted, ModelRequested, ModelResponded, ParseFailed
from prose_sim.report.calls import pair_calls
from prose_sim.report.transcript import transcript

EP = "summarization/plume/prose/1/imdb"


def _ev(cls, seq, **fields):
    return cls(run_id="r", episode_id=EP, seq=seq, ts=0.0, **fields)


def _request(seq, rid, purpose, prompt):
    return _ev(
        ModelRequested,
        seq,
        request_id=rid,
        instance=0,
        role="agent",
        purpose=purpose,
        model="m",
        request_hash="h",
        messages=[{"role": "user", "content": prompt}],
    )


def _answer(seq, rid, purpose, text):
    return _ev(
        ModelResponded,
        seq,
        request_id=rid,
        instance=0,
        role="agent",
        purpose=purpose,
        text=text,
        input_tokens=3,
        output_tokens=2,
        latency_s=0.1,
    )


def _events():
    return [
        _ev(
            EpisodeStarted,
            0,
            task="summarization",
            framework="plume",
            method="prose",
            seed=1,
            personas=["imdb"],
            instances=1,
            models={},
        ),
        _request(1, "r-a", "validate", "QUESTION A"),
        _request(2, "r-b", "validate", "QUESTION B"),
        _answer(3, "r-b", "validate", "ANSWER B"),  # B comes back first
        _ev(ParseFailed, 4, instance=0, role="agent", purpose="validate", excerpt="ANSWER B"),
        _answer(5, "r-a", "validate", "ANSWER A"),
    ]


def test_each_answer_follows_its_request_in_request_order():
    lines = list(transcript(_events(), EP))
    text = "\n".join(lines)
    assert (
        text.index("QUESTION A")
        < text.index("ANSWER A")
        < text.index("QUESTION B")
        < text.index("ANSWER B")
    )


def test_the_request_id_is_on_the_prompt_and_on_the_answer():
    lines = list(transcript(_events(), EP))
    assert any(line.strip().startswith(">>> [agent/validate] r-a prompt") for line in lines)
    assert any(line.startswith("<<< [agent/validate] r-a answer") for line in lines)


def test_a_parse_failure_is_marked_on_the_answer_it_quotes():
    lines = list(transcript(_events(), EP))
    flagged = lines.index("!!! [agent/validate] r-b answer could not be parsed")
    assert lines[flagged - 1] == "ANSWER B"
    calls, unmatched = pair_calls(_events())
    assert [c.request.request_id for c in calls] == ["r-a", "r-b"]
    assert calls[1].parse_failed is not None and calls[0].parse_failed is None and not unmatched
