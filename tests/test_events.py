"""Events are the data: what actors and the replay recorder hand on is the event itself."""

from __future__ import annotations

import msgspec
import pytest

from prose_sim.actors.inferrers.base import Learned, Retrieved
from prose_sim.events import (
    Event,
    ModelFailed,
    ModelRequested,
    ModelResponded,
    PreferencesInferred,
    PreferencesRetrieved,
)
from prose_sim.models.gateway import Gateway
from prose_sim.models.protocol import ModelCallFailed, ModelRequest
from prose_sim.models.recorded import RecordedResponses, UnrecordedBackend


def _fields(struct: type) -> dict[str, object]:
    return {f.name: (f.type, f.default, f.default_factory) for f in msgspec.structs.fields(struct)}


@pytest.mark.parametrize(
    ("answer", "event"), [(Retrieved, PreferencesRetrieved), (Learned, PreferencesInferred)]
)
def test_a_methods_answer_has_the_fields_of_the_event_it_becomes_but_instance(answer, event):
    body = {k: v for k, v in _fields(event).items() if k != "instance"}
    for field in msgspec.structs.fields(Event):
        body.pop(field.name)
    assert _fields(answer) == body


def test_an_event_is_built_with_its_own_fields_alone():
    event = PreferencesRetrieved(instance=2, preferences="p")
    assert (event.run_id, event.episode_id, event.seq, event.ts) == ("", "", -1, 0.0)


def _request(purpose: str = "draft") -> ModelRequest:
    return ModelRequest(
        role="agent",
        purpose=purpose,
        episode_id="e",
        instance=4,
        model="m",
        messages=[{"role": "user", "content": "hi"}],
    )


def _log(request: ModelRequest, outcome: ModelResponded | ModelFailed) -> list[Event]:
    asked = ModelRequested(
        run_id="old",
        episode_id="e",
        seq=7,
        ts=1.0,
        request_id="old-id",
        instance=request.instance,
        role=request.role,
        purpose=request.purpose,
        model=request.model,
        request_hash=request.content_hash(),
        messages=request.messages,
    )
    return [asked, outcome]


class Emitted:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


@pytest.mark.anyio
async def test_a_recorded_answer_is_published_again_as_logged_under_the_new_request_id():
    request = _request()
    answer = ModelResponded(
        run_id="old",
        episode_id="e",
        seq=8,
        ts=2.0,
        request_id="old-id",
        instance=4,
        role="agent",
        purpose="draft",
        text="recorded",
        input_tokens=11,
        output_tokens=5,
        latency_s=0.25,
        attempts=2,
        cost_usd=0.5,
    )
    recorded = RecordedResponses.from_events(_log(request, answer))
    gateway = Gateway({"m": UnrecordedBackend()}, recorded=recorded)
    emitted = Emitted()
    completion = await gateway.complete("m", request, emitted)
    requested, served = emitted.events
    assert isinstance(requested, ModelRequested) and isinstance(served, ModelResponded)
    assert served == msgspec.structs.replace(answer, request_id=requested.request_id)
    assert (completion.text, completion.request_id) == ("recorded", requested.request_id)
    assert recorded.served == 1


@pytest.mark.anyio
@pytest.mark.parametrize("failures", [True, False])
async def test_a_recorded_failure_fails_again_only_when_failures_are_served(failures):
    request = _request()
    failure = ModelFailed(
        request_id="old-id", instance=4, role="agent", purpose="draft", error="E: x", attempts=3
    )
    recorded = RecordedResponses.from_events(_log(request, failure), failures=failures)
    assert len(recorded) == int(failures)
    gateway = Gateway({"m": UnrecordedBackend()}, recorded=recorded)
    emitted = Emitted()
    with pytest.raises(ModelCallFailed):
        await gateway.complete("m", request, emitted)
    failed = emitted.events[-1]
    assert isinstance(failed, ModelFailed)
    # served from the log: the logged error; otherwise the backend was asked (and knows nothing)
    assert (failed.error == "E: x") is failures
    assert failed.request_id == emitted.events[0].request_id
