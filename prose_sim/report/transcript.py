"""An episode's transcript: every prompt and response, in the order they happened."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    EpisodeStarted,
    Event,
    InstanceStarted,
    ModelFailed,
    ModelRequested,
    ModelResponded,
    ParseFailed,
    PreferencesInferred,
    PreferencesRetrieved,
    StepFailed,
)

RULE = "─" * 78


def episode_ids(events: Iterable[Event]) -> list[str]:
    return [e.episode_id for e in events if isinstance(e, EpisodeStarted)]


def transcript(events: Iterable[Event], episode_id: str) -> Iterator[str]:
    """Lines describing one episode: instances, each model call's prompt and answer, outcomes."""
    for event in events:
        if event.episode_id != episode_id:
            continue
        if isinstance(event, EpisodeStarted):
            yield f"episode {episode_id}: {event.task} / {event.framework} / {event.method}, seed {event.seed}"
            yield f"users: {', '.join(event.personas)}; models: {event.models}"
        elif isinstance(event, InstanceStarted):
            yield RULE
            yield f"instance {event.instance}: user {event.persona}, document {event.document_id}"
        elif isinstance(event, ModelRequested):
            yield f"\n>>> [{event.role}/{event.purpose}] prompt ({event.model}):"
            for message in event.messages[:-1]:  # a system prompt, when one was sent
                yield f"[{message['role']}] {message['content']}"
            yield event.messages[-1]["content"] if event.messages else ""
        elif isinstance(event, ModelResponded):
            yield f"<<< [{event.role}/{event.purpose}] answer ({event.output_tokens} tokens, {event.latency_s:.2f} s):"
            yield event.text
        elif isinstance(event, ModelFailed):
            yield f"!!! [{event.role}/{event.purpose}] failed after {event.attempts} attempts: {event.error}"
        elif isinstance(event, ParseFailed):
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
