"""The judge: scores each draft against the user's text and true preferences.

Per task instance (design brief, section 5): text metrics (Levenshtein,
preference length), judge metrics asked of the judge role's model (PPCM per
true component, FPM over all of them, similarity of the inferred preferences to
the true ones), their mean (the released code's combined writing score),
BERTScore of draft vs user text, the preference BERTScores (F1, precision and
recall of the inferred preference string against this user's true preferences)
and preference accuracy (is that string closest, by BERTScore F1, to this
user's true preferences among all users of the task), the share of the user's
true components that the agent drafted with, and the share of checkable
components the draft satisfies. An agent that has inferred nothing is scored
as the released code scores it: its preference string is "None" (accuracy,
BERTScores, similarity and length are all computed on it). Each judge question
is asked as released (tasks/writing/writing_quality_assesor.py): the metric's
system message (``prompts/judge_system.j2``) and a prompt that shows what the
released one shows, with its option labels; ``[metrics] judge_parsing`` reads
the answer as the released judge does ("released") or with our forgiving
parser. Each question becomes a ``JudgeVerdict`` event; an unparseable answer
scores 0, as in the paper, and is counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import ClassVar, Protocol

import anyio

from prose_sim.actors.base import Actor, ActorContext
from prose_sim.actors.together import run_together
from prose_sim.config.metrics import MetricsSettings
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
from prose_sim.metrics.offloop import OffLoop
from prose_sim.metrics.scoring import NO_PREFERENCES, text_metrics
from prose_sim.metrics.verifiable import checker_for
from prose_sim.models.answers import Choice
from prose_sim.parsing import parse_verdict, parse_verdict_released
from prose_sim.scales import FPM_RELEASED_KEYS, FPM_SCALE, PPCM_SCALE, SIMILARITY_SCALE
from prose_sim.templating import render_filled, render_repeated
from prose_sim.world.personas import Persona

EXCERPT_CHARS = 300
# purpose -> (the options the prompt shows and a constrained answer keeps to, what the
# released parser looks for in the verdict line, in its order). The forgiving parser takes
# both: "Verdict: most preferences" scores as it does in the released code.
SCALES: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "judge_ppcm": (PPCM_SCALE, PPCM_SCALE),
    "judge_fpm": (FPM_SCALE, FPM_RELEASED_KEYS),
    "judge_similarity": (SIMILARITY_SCALE, SIMILARITY_SCALE),
}
# purpose -> what the forgiving parser takes: both, the released keys after the options
_FORGIVING = {purpose: {**labels, **released} for purpose, (labels, released) in SCALES.items()}
# the judge's default: text metrics only (no judge model, no BERTScore)
TEXT_METRICS_ONLY = MetricsSettings(judge=False, bertscore="")


class TextScorer(Protocol):
    async def score(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float, float]]:
        """BERTScore (P, R, F1) of each (candidate, reference) pair."""
        ...


def preference_accuracy(scores: dict[str, float], own: str, ties: str = "strict") -> float:
    """1 when ``own``'s true preferences score highest of all users' (``scores`` in the task's
    user order). ``ties``: "strict", own must beat every other user; "first", the released
    code's argmax, where the first of the users tied for the highest score wins."""
    if ties == "first":
        best = max(scores.values())
        return float(next(name for name, s in scores.items() if s == best) == own)
    return float(all(scores[own] > s for name, s in scores.items() if name != own))


class Judge(Actor):
    name = "judge"
    subscribes = (InstanceStarted, PreferencesRetrieved, DraftProduced, DemonstrationProduced)
    quiet = (InstanceStarted, PreferencesRetrieved, DraftProduced)
    stages: ClassVar[dict[type[Event], str]] = {DemonstrationProduced: "score"}

    def __init__(
        self,
        ctx: ActorContext,
        settings: MetricsSettings = TEXT_METRICS_ONLY,
        scorer: TextScorer | None = None,
        population: Sequence[Persona] = (),
        offloop: OffLoop | None = None,
    ):
        """``population``: every user of this task in the run (for preference accuracy);
        ``offloop``: where the text metrics are computed off the event loop (None: a worker
        thread of anyio's each time)."""
        super().__init__(ctx)
        self.offloop = offloop
        self.settings = settings
        self.scorer = scorer if settings.bertscore else None
        self.population = list(population)
        self._personas: dict[int, str] = {}
        self._retrieved: dict[int, list[str]] = {}
        self._drafts: dict[int, DraftProduced] = {}

    async def handle(self, event: Event) -> None:
        match event:
            case InstanceStarted():
                self._personas[event.instance] = event.persona
            case PreferencesRetrieved():
                self._retrieved[event.instance] = event.retrieved
            case DraftProduced():
                self._drafts[event.instance] = event
            case DemonstrationProduced():
                await self._score(
                    event,
                    self._drafts.pop(event.instance),
                    self.ctx.personas[self._personas.pop(event.instance)],
                    self._retrieved.pop(event.instance, []),
                )

    async def _score(
        self,
        demo: DemonstrationProduced,
        draft: DraftProduced,
        persona: Persona,
        retrieved: list[str],
    ) -> None:
        # tokenizing and checking long texts is CPU work: off the event loop, in the run's
        # worker thread or process a batch at a time (metrics.offloop)
        args = (draft.text, demo.text, persona.components, draft.preferences)
        text, checked, verifiable = (
            await self.offloop.call(text_metrics, *args, self.settings.verifiable)
            if self.offloop is not None
            else await anyio.to_thread.run_sync(text_metrics, *args, self.settings.verifiable)
        )
        metrics = {**text, "accepted": float(demo.accepted)}
        if retrieved:  # share of the earlier instances drawn on that were this user's
            metrics["retrieval_accuracy"] = sum(p == persona.name for p in retrieved) / len(
                retrieved
            )
        metrics.update(verifiable)
        verdicts: list[JudgeVerdict | None] = []
        calls: list[Callable[[], Awaitable[object]]] = []
        if self.settings.judge:
            verdicts = [None] * (len(persona.components) + 2)
            for i, component in enumerate(persona.components):
                calls.append(
                    partial(self._ppcm, verdicts, i, draft, component, checked.get(component))
                )
            calls.append(partial(self._fpm, verdicts, len(persona.components), draft, persona))
            calls.append(
                partial(self._similarity, verdicts, len(persona.components) + 1, draft, persona)
            )
        if self.scorer is not None:
            calls.append(partial(self._bertscore, self.scorer, metrics, draft, demo, persona))
        await run_together(calls)  # a failed question leaves the others to finish (and be recorded)
        judged = [v for v in verdicts if v is not None]
        for verdict in judged:  # published in a fixed order, whatever finished first
            await self.ctx.bus.publish(verdict)
        if judged:
            ppcm = [v.score for v in judged if v.metric == "ppcm"]
            metrics["ppcm"] = sum(ppcm) / len(ppcm) if ppcm else 0.0
            for v in judged:
                if v.metric != "ppcm":
                    metrics["fpm" if v.metric == "fpm" else "preference_similarity"] = v.score
            if "fpm" in metrics:  # the released code's combined writing score
                metrics["ppcm_fpm_mean"] = (metrics["ppcm"] + metrics["fpm"]) / 2
            metrics["judge_unparsed"] = float(sum(not v.parsed for v in judged))
        await self.ctx.bus.publish(MetricsComputed(instance=demo.instance, metrics=metrics))

    # --- the judge's questions ------------------------------------------------------

    async def _ppcm(
        self, out: list, slot: int, draft: DraftProduced, component: str, checked: bool | None
    ) -> None:
        checker = checker_for(component) if checked is not None else None
        verdict = await self._ask(
            "judge_ppcm", draft.instance, {"text": draft.text}, component=component
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
            "judge_fpm", draft.instance, {"text": draft.text}, components=persona.components
        )
        out[slot] = _verdict(verdict, draft.instance, "fpm")

    async def _similarity(
        self, out: list, slot: int, draft: DraftProduced, persona: Persona
    ) -> None:
        verdict = await self._ask(
            "judge_similarity",
            draft.instance,
            {
                "inferred": draft.preferences or NO_PREFERENCES,
                "true_preferences": persona.preferences,
            },
        )
        out[slot] = _verdict(verdict, draft.instance, "similarity")

    async def _ask(self, purpose: str, instance: int, texts: dict[str, str], **context: object):
        """Ask one question; ``texts``: the long values the prompt is built around (the
        draft, the descriptions compared), ``context`` the rest (which recurs)."""
        labels, released = SCALES[purpose]
        task, framework = self.ctx.task, self.ctx.framework
        prompt = render_filled(
            purpose, texts, task=task, framework=framework, scale=labels, **context
        )
        # the released judge's system message, sent as a system message as it is there
        system = render_repeated("judge_system", task=task, framework=framework, purpose=purpose)
        # no response prefix: the judge reasons before its verdict line, as in the released code
        completion = await self.ctx.models.complete(
            "judge", purpose, instance, prompt, system=system, answer=Choice.of(labels)
        )
        if self.settings.judge_parsing == "released":
            score = parse_verdict_released(completion.text, released)
        else:
            score = parse_verdict(completion.text, _FORGIVING[purpose])
        if score is None:
            await self._parse_failed(instance, purpose, completion.text)
        return score, completion.request_id

    async def _parse_failed(self, instance: int, purpose: str, text: str) -> None:
        await self.ctx.bus.publish(
            ParseFailed(
                instance=instance, role="judge", purpose=purpose, excerpt=text[:EXCERPT_CHARS]
            )
        )

    # --- BERTScore and preference accuracy -----------------------------------------------

    async def _bertscore(
        self,
        scorer: TextScorer,
        metrics: dict[str, float],
        draft: DraftProduced,
        demo: DemonstrationProduced,
        persona: Persona,
    ) -> None:
        # every user of the task, in the task's user order (the tie rule reads it)
        users = list(self.population)
        if all(p.name != persona.name for p in users):
            users.append(persona)
        inferred = draft.preferences or NO_PREFERENCES
        pairs = [(draft.text, demo.text)] + [(inferred, p.preferences) for p in users]
        scores = await scorer.score(pairs)
        metrics["bertscore"] = scores[0][2]
        own = next(i for i, p in enumerate(users) if p.name == persona.name)
        precision, recall, f1 = scores[1 + own]
        metrics["preference_f1"] = f1
        metrics["preference_precision"] = precision
        metrics["preference_recall"] = recall
        by_user = {p.name: s[2] for p, s in zip(users, scores[1:])}
        metrics["preference_accuracy"] = preference_accuracy(
            by_user, persona.name, self.settings.preference_accuracy_ties
        )


def _verdict(
    answer: tuple[int | None, str],
    instance: int,
    metric: str,
    component: str = "",
    checker: str = "",
    checked: bool | None = None,
) -> JudgeVerdict:
    """The verdict event of an answer, before publication (the bus stamps its envelope)."""
    score, request_id = answer
    return JudgeVerdict(
        instance=instance,
        metric=metric,
        score=float(score or 0),
        parsed=score is not None,
        component=component,
        request_id=request_id,
        checker=checker,
        checked=checked,
    )
