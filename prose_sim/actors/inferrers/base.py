"""The inferrer: the agent's memory of what the user prefers.

Each method subclasses ``Inferrer`` and implements two steps of the paper's
Algorithm 1: ``retrieve`` (before the draft: what preferences and examples to
draft with) and ``learn`` (after the user's text: update the memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple, TypeVar

import msgspec

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.actors.inferrers.memory import Memory, MemoryItem
from prose_sim.config.methods import MethodSettings
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


class CallEstimate(NamedTuple):
    """A method's a-priori estimate for one instance (the progress display's)."""

    calls: float  # the agent's inference calls (beyond the user's text and the draft)
    has_preferences: bool  # the draft is written with preferences (the judge asks one more)


class Inferrer(Actor):
    """A method. Subclass it and implement ``retrieve`` and ``learn``; the class
    declares the rest: its settings (``settings_type``), whether it learns, the
    checks of its settings, the episodes a table expands into and the calls an
    instance is expected to make. Each has a default here."""

    name = "inferrer"
    subscribes = (InstanceStarted, DraftProduced, DemonstrationProduced)
    quiet = (DraftProduced,)
    stages: ClassVar[dict[type[Event], str]] = {
        InstanceStarted: "retrieve",
        DemonstrationProduced: "learn",
    }
    # the Struct of the method's scenario table: its knobs, types and defaults (others are
    # errors at load); a method with knobs of its own subclasses MethodSettings
    settings_type: ClassVar[type[MethodSettings]] = MethodSettings
    # the retrieval mode is a knob of every method that learns
    learns: ClassVar[bool] = True
    # a table of the method expands into episodes that depend on each user (``episodes``;
    # fixed_subset: one per subset of the user's components), so it runs one user per episode
    expands_per_user: ClassVar[bool] = False

    def __init__(self, ctx: ActorContext, settings: MethodSettings | None = None):
        super().__init__(ctx)
        self.settings = settings if settings is not None else self.settings_type()
        self.memory = Memory(ctx.embedder)
        self._instances: dict[int, InstanceStarted] = {}
        self._drafts: dict[int, DraftProduced] = {}

    @classmethod
    def allowed_knobs(cls) -> frozenset[str]:
        """The knobs a scenario may set for this method."""
        knobs = set(cls.settings_type.__struct_fields__) - {"method"}
        return frozenset(knobs if cls.learns else knobs - {"retrieval_mode"})

    @classmethod
    def check(cls, settings: MethodSettings) -> tuple[str, str] | None:
        """(knob, reason) for what the settings' types cannot say, checked at load."""
        return None

    @classmethod
    def episodes(
        cls, label: str, settings: MethodSettings, components: int
    ) -> list[tuple[str, MethodSettings]]:
        """With ``expands_per_user``: (label, settings) of each episode the table ``label``
        runs for a user with ``components`` components (default: one, as given)."""
        return [(label, settings)]

    @classmethod
    def expected_calls(
        cls, settings: MethodSettings, agent_model: str, earlier: int, components: int
    ) -> CallEstimate:
        """The estimate for one instance with ``earlier`` instances before it in its episode
        and a user with ``components`` components (default: one inference call)."""
        return CallEstimate(1.0, False)

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
