"""An episode's transcript: every prompt, each followed by its answer, in the order asked.

Answers arrive in completion order (concurrent calls interleave); the
transcript prints each right after its request (joined by request id), marked
when it could not be parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    EpisodeStarted,
    Event,
    InstanceStarted,
    ModelRequested,
    ParseFailed,
    PreferencesInferred,
    PreferencesRetrieved,
    StepFailed,
)
from prose_sim.report.calls import ModelCall, pair_calls

RULE = "─" * 78


def episode_ids(events: Iterable[Event]) -> list[str]:
    return [e.episode_id for e in events if isinstance(e, EpisodeStarted)]


def transcript(events: Iterable[Event], episode_id: str) -> Iterator[str]:
    """Lines describing one episode: instances, each model call's prompt and answer, outcomes."""
    mine = [e for e in events if e.episode_id == episode_id]
    calls, _ = pair_calls(mine)
    paired = {call.request.request_id: call for call in calls}
    quoted = {id(call.parse_failed) for call in calls if call.parse_failed is not None}
    for event in mine:
        if isinstance(event, EpisodeStarted):
            yield f"episode {episode_id}: {event.task} / {event.framework} / {event.method}, seed {event.seed}"
            yield f"users: {', '.join(event.personas)}; models: {event.models}"
        elif isinstance(event, InstanceStarted):
            yield RULE
            yield f"instance {event.instance}: user {event.persona}, document {event.document_id}"
        elif isinstance(event, ModelRequested):
            yield from _call_lines(paired[event.request_id])
        elif isinstance(event, ParseFailed) and id(event) not in quoted:
            yield f"!!! [{event.role}/{event.purpose}] answer could not be parsed"
        elif isinstance(event, StepFailed):
            yield f"!!! step {event.stage} failed ({event.actor}): {event.error}"
        elif isinstance(event, PreferencesRetrieved):
            yield f"\n== preferences for the draft: {event.preferences or '(none)'}"
            if event.examples:
                yield f"== with {len(event.examples)} examples from users {', '.join(event.retrieved)}"
        elif isinstance(event, DraftProduced):
            yield "== draft produced"
        elif isinstance(event, DemonstrationProduced):
            yield "== user's text" + (" (accepted the draft)" if event.accepted else "")
        elif isinstance(event, PreferencesInferred):
            yield f"== learned preferences: {event.preferences or '(none)'}"


def _call_lines(call: ModelCall) -> Iterator[str]:
    req = call.request
    tag = f"[{req.role}/{req.purpose}] {req.request_id}"
    yield f"\n>>> {tag} prompt ({req.model}):"
    for message in req.messages[:-1]:  # a system prompt, when one was sent
        yield f"[{message['role']}] {message['content']}"
    yield req.messages[-1]["content"] if req.messages else ""
    if call.response is not None:
        r = call.response
        cached = ", cached" if r.cached else ""
        yield f"<<< {tag} answer ({r.output_tokens} tokens, {r.latency_s:.2f} s{cached}):"
        yield r.text
        if call.parse_failed is not None:
            yield f"!!! {tag} answer could not be parsed"
    elif call.failure is not None:
        yield f"!!! {tag} failed after {call.failure.attempts} attempts: {call.failure.error}"
    else:
        yield f"... {tag} no answer in the log (the run ended first)"
