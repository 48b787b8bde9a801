"""The judge: scores each draft against the user's text and true preferences.

Per task instance (design brief, section 5): text metrics (Levenshtein,
preference length), judge metrics asked of the judge role's model (PPCM per
true component, FPM over all of them, similarity of the inferred preferences to
the true ones), BERTScore of draft vs user text, preference accuracy (is the
inferred preference string closest, by BERTScore, to this user's true
preferences among all users of the task), and the share of checkable
components the draft satisfies. Each judge question becomes a ``JudgeVerdict``
event; an unparseable answer scores 0, as in the paper, and is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import anyio
import msgspec

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    Event,
    InstanceStarted,
    JudgeVerdict,
    MetricsComputed,
    ParseFailed,
    PreferencesRetrieved,
)
from prose_sim.metrics.settings import MetricsSettings
from prose_sim.metrics.text import word_levenshtein
from prose_sim.metrics.verifiable import checker_for
from prose_sim.parsing import parse_score, parse_verdict
from prose_sim.scales import FPM_SCALE, PPCM_SCALE, SIMILARITY_RANGE
from prose_sim.templating import render
from prose_sim.world.personas import Persona

EXCERPT_CHARS = 300
# Once the answer starts with "Verdict:", a few tokens hold the keyword.
VERDICT_PREFIX, VERDICT_TOKENS = "Verdict:", 16


class TextScorer(Protocol):
    async def f1(self, pairs: list[tuple[str, str]]) -> list[float]:
        """BERTScore F1 of each (candidate, reference) pair."""
        ...


def component_checks(components: Sequence[str], text: str) -> dict[str, bool]:
    """Each checkable component -> whether ``text`` satisfies it."""
    return {c: k.check(text) for c in components if (k := checker_for(c)) is not None}


def verifiable_share(components: Sequence[str], text: str) -> float | None:
    """The share of checkable components ``text`` satisfies (None: none is checkable)."""
    checks = component_checks(components, text)
    return sum(checks.values()) / len(checks) if checks else None


def preference_accuracy(scores: dict[str, float], own: str) -> float:
    """1 when ``own``'s true preferences score strictly higher than every other user's."""
    return float(all(scores[own] > s for name, s in scores.items() if name != own))


class Judge(Actor):
    name = "judge"
    subscribes = (InstanceStarted, PreferencesRetrieved, DraftProduced, DemonstrationProduced)
    stages = {DemonstrationProduced: "score"}

    def __init__(
        self,
        ctx: ActorContext,
        settings: MetricsSettings = MetricsSettings(judge=False, bertscore=""),
        scorer: TextScorer | None = None,
        population: Sequence[Persona] = (),
    ):
        """``population``: every user of this task in the run (for preference accuracy)."""
        super().__init__(ctx)
        self.settings = settings
        self.scorer = scorer if settings.bertscore else None
        self.population = list(population)
        self._personas: dict[int, str] = {}
        self._retrieved: dict[int, list[str]] = {}
        self._drafts: dict[int, DraftProduced] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, InstanceStarted):
            self._personas[event.instance] = event.persona
        elif isinstance(event, PreferencesRetrieved):
            self._retrieved[event.instance] = event.retrieved
        elif isinstance(event, DraftProduced):
            self._drafts[event.instance] = event
        elif isinstance(event, DemonstrationProduced):
            await self._score(
                event,
                self._drafts.pop(event.instance),
                self.ctx.personas[self._personas.pop(event.instance)],
                self._retrieved.pop(event.instance, []),
            )

    async def _score(
        self, demo: DemonstrationProduced, draft: DraftProduced, persona: Persona, retrieved: list[str]
    ) -> None:
        distance, normalized = word_levenshtein(draft.text, demo.text)
        metrics = {
            "levenshtein": float(distance),
            "levenshtein_norm": normalized,
            "preference_length": float(len(draft.preferences)),
            "accepted": float(demo.accepted),
        }
        if retrieved:  # share of the earlier instances drawn on that were this user's
            metrics["retrieval_accuracy"] = sum(p == persona.name for p in retrieved) / len(retrieved)
        # component -> the draft passes its checker (checked once, reused by the PPCM verdicts)
        checked = component_checks(persona.components, draft.text) if self.settings.verifiable else {}
        if checked:
            metrics["verifiable_share"] = sum(checked.values()) / len(checked)
            metrics["user_verifiable_share"] = verifiable_share(persona.components, demo.text)
        verdicts: list[Verdict | None] = []
        async with anyio.create_task_group() as tg:
            if self.settings.judge:
                verdicts = [None] * (len(persona.components) + 2)
                for i, component in enumerate(persona.components):
                    tg.start_soon(self._ppcm, verdicts, i, draft, component, checked.get(component))
                tg.start_soon(self._fpm, verdicts, len(persona.components), draft, persona)
                if draft.preferences:
                    tg.start_soon(self._similarity, verdicts, len(persona.components) + 1, draft, persona)
            if self.scorer is not None:
                tg.start_soon(self._bertscore, metrics, draft, demo, persona)
        judged = [v for v in verdicts if v is not None]
        for verdict in judged:  # published in a fixed order, whatever finished first
            await self.ctx.bus.publish(JudgeVerdict, **msgspec.structs.asdict(verdict))
        if judged:
            ppcm = [v.score for v in judged if v.metric == "ppcm"]
            metrics["ppcm"] = sum(ppcm) / len(ppcm) if ppcm else 0.0
            for v in judged:
                if v.metric != "ppcm":
                    metrics["fpm" if v.metric == "fpm" else "preference_similarity"] = v.score
            metrics["judge_unparsed"] = float(sum(not v.parsed for v in judged))
        await self.ctx.bus.publish(MetricsComputed, instance=demo.instance, metrics=metrics)

    # --- the judge's questions ------------------------------------------------------

    async def _ppcm(
        self, out: list, slot: int, draft: DraftProduced, component: str, checked: bool | None
    ) -> None:
        checker = checker_for(component) if checked is not None else None
        verdict = await self._ask(
            "judge_ppcm", draft.instance, PPCM_SCALE, component=component, text=draft.text
        )
        out[slot] = _verdict(
            verdict,
            draft.instance,
            "ppcm",
            component=component,
            checker=checker.name if checker else "",
            checked=checked,
        )

    async def _fpm(self, out: list, slot: int, draft: DraftProduced, persona: Persona) -> None:
        verdict = await self._ask(
            "judge_fpm", draft.instance, FPM_SCALE, components=persona.components, text=draft.text
        )
        out[slot] = _verdict(verdict, draft.instance, "fpm")

    async def _similarity(self, out: list, slot: int, draft: DraftProduced, persona: Persona) -> None:
        prompt = render(
            "judge_similarity",
            task=self.ctx.task,
            framework=self.ctx.framework,
            inferred=draft.preferences,
            true_preferences=persona.preferences,
        )
        completion = await self.ctx.models.complete("judge", "judge_similarity", draft.instance, prompt)
        score = parse_score(completion.text, *SIMILARITY_RANGE)
        if score is None:
            await self._parse_failed(draft.instance, "judge_similarity", completion.text)
        out[slot] = _verdict((score, completion.request_id), draft.instance, "similarity")

    async def _ask(self, purpose: str, instance: int, scale: dict[str, int], **context: object):
        prompt = render(purpose, task=self.ctx.task, framework=self.ctx.framework, scale=scale, **context)
        completion = await self.ctx.models.complete(
            "judge", purpose, instance, prompt, VERDICT_PREFIX, VERDICT_TOKENS
        )
        score = parse_verdict(completion.text, scale)
        if score is None:
            await self._parse_failed(instance, purpose, completion.text)
        return score, completion.request_id

    async def _parse_failed(self, instance: int, purpose: str, text: str) -> None:
        await self.ctx.bus.publish(
            ParseFailed, instance=instance, role="judge", purpose=purpose, excerpt=text[:EXCERPT_CHARS]
        )

    # --- BERTScore and preference accuracy -----------------------------------------------

    async def _bertscore(
        self, metrics: dict[str, float], draft: DraftProduced, demo: DemonstrationProduced, persona: Persona
    ) -> None:
        pairs = [(draft.text, demo.text)]
        others = [p for p in self.population if p.name != persona.name]
        if draft.preferences:  # nothing inferred yet: accuracy is undefined, not 0
            pairs += [(draft.preferences, p.preferences) for p in [persona, *others]]
        scores = await self.scorer.f1(pairs)
        metrics["bertscore"] = scores[0]
        if draft.preferences:
            metrics["preference_f1"] = scores[1]
            by_user = {p.name: s for p, s in zip([persona, *others], scores[1:])}
            metrics["preference_accuracy"] = preference_accuracy(by_user, persona.name)


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """A judge verdict before publication (the bus stamps run, episode, seq, time)."""

    instance: int
    metric: str
    score: float
    parsed: bool
    component: str = ""
    request_id: str = ""
    checker: str = ""
    checked: bool | None = None


def _verdict(answer: tuple[int | None, str], instance: int, metric: str, **extra: object) -> Verdict:
    score, request_id = answer
    return Verdict(
        instance=instance,
        metric=metric,
        score=float(score or 0),
        parsed=score is not None,
        request_id=request_id,
        **extra,
    )
