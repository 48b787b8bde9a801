"""The judge, one test per rule of the metrics (design brief, section 5)."""

from __future__ import annotations

import pytest
from harness import BASE, FakeModel, by_purpose, context, demo, draft, drain, instance

from prose_sim.actors.judge import Judge, preference_accuracy
from prose_sim.config.metrics import MetricsSettings
from prose_sim.events import (
    JudgeVerdict,
    MetricsComputed,
    ModelRequested,
    ParseFailed,
    PreferencesRetrieved,
)
from prose_sim.metrics.scoring import verifiable_share
from prose_sim.world.personas import builtin_catalog

pytestmark = pytest.mark.anyio

CNN = builtin_catalog().get("plume", "summarization", "cnn_dailymail")
POPULATION = builtin_catalog().for_task("plume", "summarization")


def ppcm_answer(request) -> str:
    prompt = request.messages[-1]["content"]
    if "include a simile" in prompt:
        return "It compares things like a poet.\nVerdict: clearly exhibits"
    if "ampersands" in prompt:
        return "Verdict: **somewhat contradicts**"
    if "step-by-step" in prompt:
        return "I cannot tell."  # unparseable: scores 0
    return "Verdict: neither exhibits nor contradicts"


class WordOverlap:
    """A test double for BERTScore: Jaccard overlap of word sets."""

    def __init__(self):
        self.calls = []

    async def score(self, pairs):
        self.calls.append(pairs)
        out = []
        for a, b in pairs:
            wa, wb = set(a.lower().split()), set(b.lower().split())
            f = len(wa & wb) / len(wa | wb) if wa | wb else 0.0
            out.append(
                (len(wa & wb) / len(wa) if wa else 0.0, len(wa & wb) / len(wb) if wb else 0.0, f)
            )
        return out


async def judge_once(
    settings: MetricsSettings,
    preferences: str = "",
    draft_text: str = "a draft & more",
    scorer=None,
):
    model = FakeModel(
        by_purpose(
            judge_ppcm=ppcm_answer,
            judge_fpm="Verdict: exhibits most preferences",
            judge_similarity="Reasoning.\nVerdict: very similar",
        )
    )
    ctx, sink = context(model)
    judge = Judge(ctx, settings, scorer, POPULATION)
    await judge.handle(instance(0, "cnn_dailymail"))
    await judge.handle(PreferencesRetrieved(**BASE, instance=0, preferences=preferences))
    await judge.handle(draft(0, draft_text, preferences))
    await judge.handle(demo(0, "the user's own text"))
    events = drain(sink)
    metrics = next(e for e in events if isinstance(e, MetricsComputed)).metrics
    return metrics, events, model


async def test_ppcm_is_the_mean_over_true_components_and_an_unparseable_verdict_scores_zero():
    metrics, events, model = await judge_once(MetricsSettings(bertscore="", verifiable=False))
    assert len(model.by_purpose("judge_ppcm")) == len(CNN.components) == 4
    assert metrics["ppcm"] == pytest.approx((2 - 1 + 0 + 0) / 4)
    assert metrics["judge_unparsed"] == 1
    failed = [e for e in events if isinstance(e, ParseFailed)]
    assert [(e.role, e.purpose) for e in failed] == [("judge", "judge_ppcm")]


async def test_fpm_is_one_judgement_over_all_components():
    metrics, _, model = await judge_once(MetricsSettings(bertscore="", verifiable=False))
    [request] = model.by_purpose("judge_fpm")
    assert all(c in request.messages[-1]["content"] for c in CNN.components)
    assert metrics["fpm"] == 1.0  # "most"


async def test_similarity_is_judged_on_the_released_labels():
    metrics, _, model = await judge_once(
        MetricsSettings(bertscore="", verifiable=False), preferences="use similes"
    )
    assert metrics["preference_similarity"] == 3.0  # "very similar"
    prompt = model.prompts("judge_similarity")[0]
    assert "use similes" in prompt and CNN.preferences in prompt


async def test_each_verdict_is_an_event_linked_to_its_model_call_in_component_order():
    _, events, _ = await judge_once(MetricsSettings(bertscore=""), preferences="x")
    verdicts = [e for e in events if isinstance(e, JudgeVerdict)]
    assert [v.metric for v in verdicts] == ["ppcm"] * 4 + ["fpm", "similarity"]
    assert [v.component for v in verdicts[:4]] == CNN.components
    asked = {e.request_id: e for e in events if isinstance(e, ModelRequested)}
    for v in verdicts:
        assert (
            asked[v.request_id].purpose
            == {"ppcm": "judge_ppcm", "fpm": "judge_fpm", "similarity": "judge_similarity"}[
                v.metric
            ]
        )
    unparsed = [v for v in verdicts if not v.parsed]
    assert [(v.component, v.score) for v in unparsed] == [("adopt a step-by-step structure", 0.0)]


async def test_ppcm_verdicts_of_checkable_components_carry_the_checkers_result():
    _, events, _ = await judge_once(
        MetricsSettings(bertscore=""), draft_text="salt & pepper & more"
    )
    by_component = {
        e.component: e for e in events if isinstance(e, JudgeVerdict) and e.metric == "ppcm"
    }
    ampersand = by_component['use ampersands (&) instead of "and"s']
    assert ampersand.checker == "ampersands" and ampersand.checked is True
    assert (
        by_component["include a simile"].checker == ""
        and by_component["include a simile"].checked is None
    )


async def test_judge_metrics_can_be_turned_off():
    metrics, events, model = await judge_once(
        MetricsSettings(judge=False, bertscore="", verifiable=False)
    )
    assert model.requests == [] and not any(isinstance(e, JudgeVerdict) for e in events)
    assert "ppcm" not in metrics and metrics["levenshtein"] > 0


async def test_bertscore_compares_draft_with_user_text_and_inferred_with_every_users_preferences():
    scorer = WordOverlap()
    metrics, _, _ = await judge_once(
        MetricsSettings(judge=False, verifiable=False), preferences=CNN.preferences, scorer=scorer
    )
    [pairs] = scorer.calls
    assert pairs[0] == ("a draft & more", "the user's own text")
    assert sorted(ref for _, ref in pairs[1:]) == sorted(p.preferences for p in POPULATION)
    assert metrics["preference_f1"] == 1.0 and metrics["preference_accuracy"] == 1.0


def test_preference_accuracy_needs_the_own_user_strictly_closest():
    assert preference_accuracy({"me": 0.9, "a": 0.5, "b": 0.8}, "me") == 1.0
    assert preference_accuracy({"me": 0.8, "a": 0.8}, "me") == 0.0  # a tie is not a hit
    assert preference_accuracy({"me": 0.4, "a": 0.8}, "me") == 0.0


def test_verifiable_share_counts_only_checkable_components():
    components = ["use emojis", "be intensely emotional", "use semicolons (;) when possible"]
    assert verifiable_share(components, "Great news 🎉 we won") == 0.5
    assert verifiable_share(components, "Great news; we won 🎉") == 1.0
    assert verifiable_share(["be intensely emotional"], "anything") is None
