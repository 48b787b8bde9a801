"""Documents the simulated users write about, and how episodes draw them.

The bundled corpus ships inside the package: one JSON Lines file per source
under ``world/corpus/``, each line ``{"id", "source", "text"}``, written for
this project in the genre of the paper's dataset for that source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources

import msgspec

from prose_sim.errors import UsageError
from prose_sim.seeding import rng_for


class Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    source: str
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


class SourceInfo(msgspec.Struct, frozen=True):
    name: str
    genre: str
    hf_dataset: str  # the paper's Hugging Face dataset for this source
    min_words: int
    max_words: int


# Genres and word ranges of the paper's sources (design brief, section 2).
SOURCES: dict[str, SourceInfo] = {
    s.name: s
    for s in [
        SourceInfo("cnn_dailymail", "news article", "cnn_dailymail (3.0.0)", 250, 900),
        SourceInfo("slf5k", "first-person reddit post", "JeremyAlain/SLF5K", 151, 600),
        SourceInfo(
            "wikipedia", "simple-English encyclopedia page", "wikipedia (20220301.simple)", 500, 800
        ),
        SourceInfo(
            "ml_arxiv", "machine-learning paper abstract", "CShorten/ML-ArXiv-Papers", 80, 350
        ),
        SourceInfo("imdb", "movie review", "imdb", 151, 600),
        SourceInfo(
            "ccby", "paper title, abstract and highlights", "orieg/elsevier-oa-cc-by", 120, 500
        ),
        SourceInfo("ampere", "peer review of a paper", "launch/ampere", 150, 700),
        SourceInfo("paper_tweet", "paper-announcement tweet", "nitsanb/paper_tweet", 8, 70),
    ]
}


class Corpus:
    """Documents by source, with deterministic per-(seed, user) draws.

    ``sequences`` fixes the draw of some users: (task, seed, source) -> document ids in
    the order that task's user of that source gets them (the paper's datasets, shuffled
    as the released code shuffles them); every other draw is a seeded sample.
    ``interleavings``: (task, seed) -> (source, document id) of all those users' documents
    in the order the released code interleaves the users.
    """

    def __init__(
        self,
        documents: list[Document],
        sequences: Mapping[tuple[str, int, str], Sequence[str]] | None = None,
        interleavings: Mapping[tuple[str, int], Sequence[tuple[str, str]]] | None = None,
    ):
        self._by_source: dict[str, list[Document]] = {}
        for doc in documents:
            self._by_source.setdefault(doc.source, []).append(doc)
        for docs in self._by_source.values():
            docs.sort(key=lambda d: d.id)
        self._sequences = {key: tuple(ids) for key, ids in (sequences or {}).items()}
        self._interleavings = {key: tuple(o) for key, o in (interleavings or {}).items()}

    def with_documents(self, extra: list[Document]) -> Corpus:
        """This corpus plus ``extra`` documents (personas' own)."""
        if not extra:
            return self
        docs = [d for docs in self._by_source.values() for d in docs] + extra
        return Corpus(docs, self._sequences, self._interleavings)

    def interleaving(self, task: str, seed: int) -> tuple[tuple[str, str], ...] | None:
        """(source, document id) of a task's users in the released interleaved order, if any."""
        return self._interleavings.get((task, seed))

    def sources(self) -> list[str]:
        return sorted(self._by_source)

    def documents(self, source: str) -> list[Document]:
        return list(self._by_source.get(source, []))

    def count(self, source: str) -> int:
        return len(self._by_source.get(source, []))

    def get(self, source: str, doc_id: str) -> Document:
        for doc in self._by_source.get(source, []):
            if doc.id == doc_id:
                return doc
        raise UsageError(f"no document {doc_id!r} in source {source!r}")

    def draw(self, source: str, n: int, seed: int, user_key: str, task: str = "") -> list[Document]:
        """n documents of a source for one user, without replacement.

        The first n of the fixed sequence of (task, seed, source) where there is one;
        otherwise a sample that depends only on (seed, user_key). Either way every method
        sees the same documents for the same user and seed, whatever the concurrency.
        """
        fixed = self._sequences.get((task, seed, source))
        if fixed is not None:
            if n > len(fixed):
                raise UsageError(
                    f"source {source!r} has {len(fixed)} documents for {task} seed {seed}, "
                    f"{n} requested"
                )
            return [self.get(source, doc_id) for doc_id in fixed[:n]]
        docs = self._by_source.get(source, [])
        if n > len(docs):
            raise UsageError(f"source {source!r} has {len(docs)} documents, {n} requested")
        return rng_for(seed, "documents", user_key).sample(docs, n)


_decoder = msgspec.json.Decoder(Document)


def parse_jsonl(data: bytes, origin: str) -> list[Document]:
    docs = []
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            raise UsageError(f"{origin}:{lineno}: {exc}") from None
    return docs


def bundled_corpus() -> Corpus:
    """The documents shipped with prose_sim, read afresh (the world assembly keeps them)."""
    folder = resources.files("prose_sim.world").joinpath("corpus")
    docs: list[Document] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jsonl"):
            docs.extend(parse_jsonl(entry.read_bytes(), f"corpus/{entry.name}"))
    return Corpus(docs)
