"""The inferrer: the agent's memory of what the user prefers.

Each method subclasses ``Inferrer`` and implements two steps of the paper's
Algorithm 1: ``retrieve`` (before the draft: what preferences and examples to
draft with) and ``learn`` (after the user's text: update the memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

import msgspec

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.actors.inferrers.memory import Memory, MemoryItem
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    Event,
    InstanceStarted,
    ParseFailed,
    PreferencesInferred,
    PreferencesRetrieved,
)
from prose_sim.models.answers import AnswerShape
from prose_sim.templating import render, render_repeated

T = TypeVar("T")
EXCERPT_CHARS = 300
DEFAULT_SETTINGS = MethodSettings()  # every knob at its default

# The answer format of the purposes whose prompt asks for the answer alone (no reasoning
# first); backends that can (local models) start the answer with it, which keeps small
# models to the format. Refine asks the model to reason first, validate for its final
# decision on a line of its own (what comes before it is the model's), and CIPHER's answer
# is the whole reply, so they get no prefix: a prefix must never cut what the model writes.
FORMAT_PREFIX: dict[str, str] = {
    "coalesce": "Preferences:",
    "breakdown": 'Preferences: ["',  # the list's first string is opened too
}


def same_text(a: str, b: str, equality: str = "words") -> bool:
    """Whether a draft equals the user's text. ``equality``: "exact", the same string (the
    released ``WritingTrajectory.__eq__``), or "words", the same words."""
    return a == b if equality == "exact" else a.split() == b.split()


class Retrieved(msgspec.Struct, frozen=True):
    """A method's answer to 'complete': the body of the ``PreferencesRetrieved`` it
    publishes (the actor adds the instance; a test holds the two to the same fields)."""

    preferences: str
    examples: list[tuple[str, str]] = []
    retrieved: list[str] = []  # personas of the earlier instances drawn on
    components: list[str] | None = None  # one per prompt line; None: split at "; "
    examples_framed: bool = False  # frame the examples even when there are none


class Learned(msgspec.Struct, frozen=True):
    """A method's answer to 'learn': the body of the ``PreferencesInferred`` it publishes."""

    preferences: str
    components: list[str] = []
    validation: dict[str, list[int]] = {}  # component -> verdict scores (PROSE)
    threshold: float | None = None


class Inferrer(Actor):
    name = "inferrer"
    subscribes = (InstanceStarted, DraftProduced, DemonstrationProduced)
    stages: ClassVar[dict[type[Event], str]] = {
        InstanceStarted: "retrieve",
        DemonstrationProduced: "learn",
    }
    # the MethodSettings knobs this method takes (others are errors at load)
    knobs: ClassVar[frozenset[str]] = frozenset()
    # the retrieval mode is a knob of every method that learns
    learns: ClassVar[bool] = True

    def __init__(self, ctx: ActorContext, settings: MethodSettings = DEFAULT_SETTINGS):
        super().__init__(ctx)
        self.settings = settings
        self.memory = Memory(ctx.embedder)
        self._instances: dict[int, InstanceStarted] = {}
        self._drafts: dict[int, DraftProduced] = {}

    @classmethod
    def allowed_knobs(cls) -> frozenset[str]:
        return cls.knobs | ({"retrieval_mode"} if cls.learns else frozenset())

    async def handle(self, event: Event) -> None:
        match event:
            case InstanceStarted():
                self._instances[event.instance] = event
                got = await self.retrieve(event)
                await self.ctx.bus.publish(
                    PreferencesRetrieved(instance=event.instance, **msgspec.structs.asdict(got))
                )
            case DraftProduced():
                self._drafts[event.instance] = event
            case DemonstrationProduced():
                instance = self._instances.pop(event.instance)
                draft = self._drafts.pop(event.instance)
                learned = await self.learn(instance, draft, event)
                await self.ctx.bus.publish(
                    PreferencesInferred(instance=event.instance, **msgspec.structs.asdict(learned))
                )

    async def retrieve(self, instance: InstanceStarted) -> Retrieved:
        raise NotImplementedError

    async def learn(
        self, instance: InstanceStarted, draft: DraftProduced, demonstration: DemonstrationProduced
    ) -> Learned:
        raise NotImplementedError

    # --- helpers for methods ------------------------------------------------------

    async def recall(self, instance: InstanceStarted, k: int) -> list[MemoryItem]:
        return await self.memory.retrieve(
            instance.persona,
            instance.document_id,
            instance.document,
            k,
            self.settings.retrieval_mode,
        )

    def remember(
        self,
        instance: InstanceStarted,
        user_text: str,
        preferences: str = "",
        components: Sequence[str] = (),
    ) -> None:
        self.memory.add(
            MemoryItem(
                instance=instance.instance,
                persona=instance.persona,
                document_id=instance.document_id,
                document=instance.document,
                user_text=user_text,
                preferences=preferences,
                components=list(components),
            )
        )

    async def ask(
        self,
        purpose: str,
        instance: int,
        template: str,
        parse: Callable[[str], T | None],
        answer: AnswerShape | None = None,
        **context: object,
    ) -> T | None:
        """Ask the agent's model (with the inference system prompt); parse its answer,
        recording a parse failure as an event. ``answer``: the shape ``parse`` reads, for
        roles whose answers are constrained."""
        prompt = render(template, task=self.ctx.task, framework=self.ctx.framework, **context)
        completion = await self.ctx.models.complete(
            "agent",
            purpose,
            instance,
            prompt,
            response_prefix=FORMAT_PREFIX.get(purpose, ""),
            system=render_repeated(
                "infer_system", task=self.ctx.task, framework=self.ctx.framework
            ),
            answer=answer,
        )
        parsed = parse(completion.text)
        if parsed is None:
            await self.ctx.bus.publish(
                ParseFailed(
                    instance=instance,
                    role="agent",
                    purpose=purpose,
                    excerpt=completion.text[:EXCERPT_CHARS],
                )
            )
        return parsed
