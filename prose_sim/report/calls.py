"""An episode's model calls, each request paired with its answer (or failure).

The log holds a request when it is made and its answer when it comes back, so
concurrent calls interleave; here each answer is joined to its request by
request id, in the order the requests were made. A ``parse_failed`` event names
no request: it is joined to the answer of the same instance, role and purpose
whose text it quotes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import msgspec

from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded, ParseFailed


class ModelCall(msgspec.Struct, kw_only=True):
    request: ModelRequested
    response: ModelResponded | None = None
    failure: ModelFailed | None = None
    parse_failed: ParseFailed | None = None


def pair_calls(events: Iterable[Event]) -> tuple[list[ModelCall], list[ParseFailed]]:
    """The calls in request order, and the parse failures no answer could be found for."""
    calls: dict[str, ModelCall] = {}
    answered: dict[tuple[str, int, str, str], list[ModelCall]] = defaultdict(list)
    unmatched: list[ParseFailed] = []
    for event in events:
        match event:
            case ModelRequested():
                calls[event.request_id] = ModelCall(request=event)
            case ModelResponded():
                if (call := calls.get(event.request_id)) is not None:
                    call.response = event
                    key = (event.episode_id, event.instance, event.role, event.purpose)
                    answered[key].append(call)
            case ModelFailed():
                if (call := calls.get(event.request_id)) is not None:
                    call.failure = event
            case ParseFailed():
                key = (event.episode_id, event.instance, event.role, event.purpose)
                if (call := _quoted_by(answered.get(key, []), event)) is not None:
                    call.parse_failed = event
                else:
                    unmatched.append(event)
    return list(calls.values()), unmatched


def _quoted_by(calls: Iterable[ModelCall], failed: ParseFailed) -> ModelCall | None:
    """The latest of ``calls`` (answered, same instance, role and purpose) whose text it quotes."""
    found = None
    for call in calls:
        answer = call.response
        if (
            call.parse_failed is None
            and answer is not None
            and answer.text.startswith(failed.excerpt)
        ):
            found = call
    return found
