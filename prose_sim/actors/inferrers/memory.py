"""The inferrer's memory of earlier task instances, and retrieval over it.

Retrieval modes (design section 3):
- exact_match: only the current user's earlier instances, most recent first
  (the paper's default; with it each user is an episode of its own);
- most_recent: any user's, most recent first;
- cosine_sim: any user's, by cosine similarity of the documents' embeddings;
- bertscore: any user's, by BERTScore F1 of this document against each earlier one.
In the two similarity modes, a threshold (``[retrieval] threshold``) then drops
those of the top k below it, as the released code's ExampleRetriever does; ties
go to the more recent instance.
"""

from __future__ import annotations

import msgspec

from prose_sim.models.embeddings import Embedder, Retrieval


class MemoryItem(msgspec.Struct, frozen=True, kw_only=True):
    instance: int
    persona: str
    document_id: str
    document: str
    user_text: str
    preferences: str = ""  # what the method learned on this instance
    components: list[str] = []


class Memory:
    def __init__(self, embedder: Embedder | Retrieval | None = None):
        self.items: list[MemoryItem] = []
        self._embedder = embedder

    def add(self, item: MemoryItem) -> None:
        self.items.append(item)

    async def retrieve(
        self, persona: str, document_id: str, document: str, k: int, mode: str
    ) -> list[MemoryItem]:
        """Up to k earlier items, best first."""
        if k <= 0:
            return []
        recent_first = self.items[::-1]
        if mode == "exact_match":
            return [m for m in recent_first if m.persona == persona][:k]
        if mode == "most_recent":
            return recent_first[:k]
        if mode in ("cosine_sim", "bertscore"):
            if self._embedder is None:
                raise RuntimeError(f"{mode} retrieval needs an embedder")
            retrieval = (
                self._embedder
                if isinstance(self._embedder, Retrieval)
                else Retrieval(self._embedder)
            )
            scores = await retrieval.similarities(
                mode, (document_id, document), [(m.document_id, m.document) for m in recent_first]
            )
            ranked = sorted(
                zip(scores, range(len(recent_first)), recent_first), key=lambda t: (-t[0], t[1])
            )[:k]
            threshold = retrieval.threshold
            return [item for score, _, item in ranked if threshold is None or score >= threshold]
        raise ValueError(f"unknown retrieval mode {mode!r}")


def released_order(items: list[MemoryItem], mode: str) -> list[MemoryItem]:
    """Retrieved items (best first) in the order the released ``ExampleRetriever.
    get_most_similar_examples`` returns them: oldest first under exact_match and
    most_recent (it keeps the last k, in the order they came), best first under the
    similarity modes (torch ``topk``). The released ICL and CIPHER-N agents show them so;
    PROSE reverses them."""
    return items[::-1] if mode in ("exact_match", "most_recent") else list(items)
