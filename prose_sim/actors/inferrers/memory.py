"""The inferrer's memory of earlier task instances, and retrieval over it.

Retrieval modes (design section 3):
- exact_match: only the current user's earlier instances, most recent first
  (the paper's default; with it each user is an episode of its own);
- most_recent: any user's, most recent first;
- cosine_sim: any user's, by cosine similarity of the documents' embeddings.
"""

from __future__ import annotations

import msgspec

from prose_sim.models.embeddings import Embedder, cosine


class MemoryItem(msgspec.Struct, frozen=True, kw_only=True):
    instance: int
    persona: str
    document_id: str
    document: str
    user_text: str
    preferences: str = ""  # what the method learned on this instance
    components: list[str] = []


class Memory:
    def __init__(self, embedder: Embedder | None = None):
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
        if mode == "cosine_sim":
            if self._embedder is None:
                raise RuntimeError("cosine_sim retrieval needs an embedder")
            query = await self._embedder.embed(document_id, document)
            scored = []
            for age, item in enumerate(recent_first):
                vector = await self._embedder.embed(item.document_id, item.document)
                scored.append((-cosine(query, vector), age, item))
            scored.sort(key=lambda t: (t[0], t[1]))
            return [item for _, _, item in scored[:k]]
        raise ValueError(f"unknown retrieval mode {mode!r}")
