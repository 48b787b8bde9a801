"""Drive one inferrer directly, with a programmable fake model behind the real gateway."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio

from prose_sim.actors.base import ActorContext
from prose_sim.events import DemonstrationProduced, DraftProduced, InstanceStarted
from prose_sim.models.gateway import Gateway, ModelClient, RetryPolicy, RoleModel
from prose_sim.models.protocol import ROLES, Completion, ModelRequest
from prose_sim.runtime.bus import EpisodeBus
from prose_sim.world.personas import builtin_catalog
from prose_sim.world.tasks import TASKS

BASE = dict(run_id="r", episode_id="e", seq=0, ts=0.0)


class FakeModel:
    """Answers with ``answer(request)``; records every request."""

    def __init__(self, answer: Callable[[ModelRequest], str]):
        self.answer = answer
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        return Completion(text=self.answer(request), input_tokens=1, output_tokens=1)

    def by_purpose(self, purpose: str) -> list[ModelRequest]:
        return [r for r in self.requests if r.purpose == purpose]

    def prompts(self, purpose: str) -> list[str]:
        return [r.messages[-1]["content"] for r in self.by_purpose(purpose)]


def by_purpose(**answers: str | Callable[[ModelRequest], str]) -> Callable[[ModelRequest], str]:
    def answer(request: ModelRequest) -> str:
        given = answers.get(request.purpose, "some text")
        return given(request) if callable(given) else given

    return answer


def make(method_cls, model: FakeModel, agent_model: str = "gpt-4o", embedder=None, **settings):
    """An inferrer of the given class on a fresh bus; returns (inferrer, sink)."""
    ctx, receive = context(model, agent_model, embedder)
    return method_cls(ctx, method_cls.settings_type(**settings)), receive


def context(
    model: FakeModel, agent_model: str = "gpt-4o", embedder=None, task: str = "summarization"
):
    """An actor context on a fresh bus, every role served by ``model``; returns (ctx, sink)."""
    send, receive = anyio.create_memory_object_stream(100_000)
    bus = EpisodeBus("r", "e", send)
    gateway = Gateway({"m": model}, RetryPolicy(attempts=1))
    roles = {role: RoleModel(backend="m", model=agent_model) for role in ROLES}
    catalog = builtin_catalog()
    ctx = ActorContext(
        bus=bus,
        models=ModelClient(gateway, bus.publish, roles, "e", 1),
        task=TASKS[task],
        framework="plume",
        seed=1,
        personas={n: catalog.get("plume", task, n) for n in catalog.names("plume", task)},
        agent_model=agent_model,
        embedder=embedder,
    )
    return ctx, receive


class OverlapScorer:
    """A fake BERTScore: word-overlap precision, recall and F1 of each (candidate, reference).

    Deterministic and in [0, 1] like the real scores, with identical texts at 1 and texts
    sharing no word at 0; it loads nothing (see conftest's ``fake_bertscore``)."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []

    def score_sync(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float, float]]:
        self.calls.append(list(pairs))
        return [self.pair(candidate, reference) for candidate, reference in pairs]

    async def score(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float, float]]:
        return self.score_sync(pairs)

    async def f1(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [f for _, _, f in self.score_sync(pairs)]

    @staticmethod
    def pair(candidate: str, reference: str) -> tuple[float, float, float]:
        cand, ref = set(candidate.lower().split()), set(reference.lower().split())
        if not cand or not ref:
            return (0.0, 0.0, 0.0)
        shared = len(cand & ref)
        p, r = shared / len(cand), shared / len(ref)
        return (p, r, 2 * p * r / (p + r) if shared else 0.0)


_counter = itertools.count()


def instance(
    i: int, persona: str = "cnn_dailymail", document: str | None = None
) -> InstanceStarted:
    return InstanceStarted(
        **BASE,
        instance=i,
        persona=persona,
        document_id=f"doc-{persona}-{i}",
        document=document or f"document number {i}",
    )


def draft(i: int, text: str, preferences: str = "") -> DraftProduced:
    return DraftProduced(**BASE, instance=i, text=text, preferences=preferences)


def demo(i: int, text: str) -> DemonstrationProduced:
    return DemonstrationProduced(**BASE, instance=i, text=text)


async def step(
    inferrer, i: int, draft_text: str, user_text: str, persona: str = "cnn_dailymail", document=None
):
    """One full instance: retrieve, then learn from (draft, user text). Returns (retrieved, learned)."""
    inst = instance(i, persona, document)
    got = await inferrer.retrieve(inst)
    learned = await inferrer.learn(inst, draft(i, draft_text, got.preferences), demo(i, user_text))
    return got, learned


def drain(receive) -> list:
    events = []
    while True:
        try:
            events.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return events
