"""The paper's documents: its Hugging Face datasets, read as the released code reads them.

``corpus = "huggingface"`` gives each user the documents the released code
(``load_data`` in ``tasks/writing/dataset_helpers.py`` and ``get_dataset`` in
``summarization.py`` / ``email_writing.py``) gives it, for every seed:

1. every source's ``train`` split is read whole and filtered as ``load_data``
   filters it (table below), keeping the rows' order;
2. one ``numpy.random.default_rng(seed)`` shuffles the kept rows of each of the
   task's sources in turn, in the task's source order (summarization: cnn_dailymail,
   slf5k, wikipedia, ml_arxiv, imdb; email writing: slf5k, ccby, ampere, paper_tweet),
   so a source's order depends on the seed and on how many rows the sources before
   it keep;
3. a user gets the first ``demonstrations_per_user`` rows of its source, in that
   order, as its task instances; the text is stripped of surrounding whitespace,
   as the released task instance strips it.

The documents therefore differ per seed (and, for slf5k, per task), as in the
paper. A source that a scenario's users do not need is still read when a needed
source comes after it in the task's order, because its row count moves the shared
generator on. A source outside the released lists (a plugin persona's) comes after
them, in name order.

=============  ============================  ===============================================
source         HF path (config), split       document text; rows kept
=============  ============================  ===============================================
cnn_dailymail  cnn_dailymail (3.0.0), train  ``article``; every row
slf5k          JeremyAlain/SLF5K, train      ``post``; every row (the released code builds a
                                             list of posts over 150 words but never uses it)
wikipedia      wikipedia (20220301.simple),  ``text``; pages of 501-799 words (more than
               train                         500 and fewer than 800, split on whitespace)
ml_arxiv       CShorten/ML-ArXiv-Papers,     ``abstract``; every row
               train
imdb           imdb, train                   ``text`` as is (``<br />`` tags kept); reviews
                                             of more than 150 words
ccby           orieg/elsevier-oa-cc-by,      ``" My title: " + title + ". My abstract: " +
               train                         abstract + " My highlights: " + the highlights
                                             joined with ". "``; articles with a non-empty
                                             ``author_highlights`` list
ampere         launch/ampere, train          the ``text`` list of propositions joined with
                                             single spaces; every row
paper_tweet    nitsanb/paper_tweet, train    of each ``text`` line: skipped if it holds
                                             ``[`` or no double quote, else the characters
                                             after the first double quote up to two before
                                             the last (Python's slice, as released); an
                                             empty result is kept
=============  ============================  ===============================================

Nothing else is cleaned: no HTML, URL or whitespace handling beyond the final
strip, because the released code does none. ``retrieval_mode = "exact_match"``
(the paper's) runs each user in its own episode. With another retrieval mode all
of a task's users share one episode, and the released code shuffles all their
instances together with the same generator; that order is reproduced too when
every user's source is one of the task's released sources (all of them are then
read).

Where the data comes from: the Hub by default (``datasets.load_dataset(path,
name=config, split="train")``, cached by ``datasets``), or, with ``corpus_dir``,
the folder ``<corpus_dir>/<source>/`` holding the split as files ``datasets``
reads itself (``train.parquet``, ``train.jsonl``, ``train.csv``, ``train.txt``,
or shards such as ``train-00000-of-00003.parquet``), in the dataset's own
schema. ``wikipedia``, ``orieg/elsevier-oa-cc-by`` and ``JeremyAlain/SLF5K`` are
loading-script datasets on the Hub: with ``datasets`` before 4.0 they are loaded with
``trust_remote_code=True``, as the released code loads them; ``datasets`` 4 and later
refuse scripts, so there those sources need a ``corpus_dir`` copy.

The ``datasets`` library is optional (``pip install 'prose-sim[hf]'``); it and
numpy are imported only when this corpus is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prose_sim.errors import UsageError
from prose_sim.extras import missing_extra
from prose_sim.world.corpus import Corpus, Document

Row = Mapping[str, Any]

BUNDLED_HINT = "--set corpus=bundled runs on the bundled documents instead"

# the released tasks' ALL_DATASETS, in their order (the order the seeded generator shuffles in)
REFERENCE_SOURCES: dict[str, tuple[str, ...]] = {
    "summarization": ("cnn_dailymail", "slf5k", "wikipedia", "ml_arxiv", "imdb"),
    "email_writing": ("slf5k", "ccby", "ampere", "paper_tweet"),
}


@dataclass(frozen=True)
class HFSpec:
    """Where a source's documents are on the Hub and how ``load_data`` reads a row."""

    path: str
    config: str | None
    columns: tuple[str, ...]  # the columns the text is built from
    text: Callable[[Row], str | None]  # a row's document text; None: load_data drops the row
    filtered: bool  # False: load_data keeps every row (its count is the split's length)
    rule: str  # the rows kept, in words, for error messages
    split: str = "train"
    script: bool = False  # a loading-script dataset on the Hub (load_data trusts its code)

    @property
    def label(self) -> str:
        """The dataset as SOURCES names it: path, with the config in brackets."""
        return self.path if self.config is None else f"{self.path} ({self.config})"


# -- the released load_data's text and filter, per source -------------------------


def _words(text: str) -> int:
    return len(text.split())


def _article(row: Row) -> str | None:
    return str(row["article"])


def _post(row: Row) -> str | None:
    return str(row["post"])


def _abstract(row: Row) -> str | None:
    return str(row["abstract"])


def _wikipedia_text(row: Row) -> str | None:
    text = str(row["text"])
    return text if 500 < _words(text) < 800 else None


def _imdb_text(row: Row) -> str | None:
    text = str(row["text"])
    return text if _words(text) > 150 else None


def _ccby_text(row: Row) -> str | None:
    highlights = row["author_highlights"]
    if not highlights:
        return None
    title, abstract = row["title"] or "", row["abstract"] or ""
    return f" My title: {title}. My abstract: {abstract} My highlights: " + ". ".join(highlights)


def _ampere_text(row: Row) -> str | None:
    return " ".join(row["text"])


def _paper_tweet_text(row: Row) -> str | None:
    line = str(row["text"])
    if "[" in line or '"' not in line:  # a thread as a list; no quote: str.index raises there
        return None
    return line[line.index('"') + 1 : line.rfind('"') - 2]


DATASET_SPECS: dict[str, HFSpec] = {
    "cnn_dailymail": HFSpec(
        "cnn_dailymail", "3.0.0", ("article",), _article, False, "rows with an article"
    ),
    "slf5k": HFSpec(
        "JeremyAlain/SLF5K", None, ("post",), _post, False, "rows with a post", script=True
    ),
    "wikipedia": HFSpec(
        "wikipedia",
        "20220301.simple",
        ("text",),
        _wikipedia_text,
        True,
        "pages of 501-799 words",
        script=True,
    ),
    "ml_arxiv": HFSpec(
        "CShorten/ML-ArXiv-Papers", None, ("abstract",), _abstract, False, "rows with an abstract"
    ),
    "imdb": HFSpec("imdb", None, ("text",), _imdb_text, True, "reviews over 150 words"),
    "ccby": HFSpec(
        "orieg/elsevier-oa-cc-by",
        None,
        ("title", "abstract", "author_highlights"),
        _ccby_text,
        True,
        "articles with author highlights",
        script=True,
    ),
    "ampere": HFSpec("launch/ampere", None, ("text",), _ampere_text, False, "reviews"),
    "paper_tweet": HFSpec(
        "nitsanb/paper_tweet",
        None,
        ("text",),
        _paper_tweet_text,
        True,
        'lines with a double quote and no "["',
    ),
}


# -- loading --------------------------------------------------------------------


def _default_load_dataset() -> Callable[..., Any]:
    try:
        import datasets
    except ImportError:
        needs = missing_extra("the Hugging Face corpus (the datasets library)", "hf")
        raise UsageError(f"{needs}; {BUNDLED_HINT}") from None
    return datasets.load_dataset


def _short(exc: BaseException, limit: int = 200) -> str:
    """One line naming the exception, at most limit characters."""
    message = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE asks huggingface_hub (and so datasets) not to reach the Hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _script_kwargs(spec: HFSpec) -> dict[str, Any]:
    """``trust_remote_code=True`` for a loading-script dataset, as load_data passes it, where
    ``datasets`` still runs scripts (before 4.0; later versions refuse scripts and only log
    the argument)."""
    if not spec.script:
        return {}
    try:
        import datasets

        major = int(datasets.__version__.split(".")[0])
    except (ImportError, ValueError):
        return {}
    return {"trust_remote_code": True} if major < 4 else {}


def _load(
    spec: HFSpec, source: str, load_dataset: Callable[..., Any], data_dir: Path | None
) -> Any:
    where = f"Hugging Face dataset {spec.label!r} for source {source!r}"
    if data_dir is not None:
        folder = data_dir / source
        if not folder.is_dir():
            raise UsageError(
                f"corpus_dir: no folder {str(folder)!r} for source {source!r} "
                f"({spec.label}, split {spec.split}); {BUNDLED_HINT}"
            )
        try:
            return load_dataset(str(folder), split=spec.split)
        except Exception as exc:
            raise UsageError(
                f"corpus_dir: cannot read {where} from {str(folder)!r}: {_short(exc)}; "
                f"{BUNDLED_HINT}"
            ) from None
    try:
        return load_dataset(spec.path, name=spec.config, split=spec.split, **_script_kwargs(spec))
    except Exception as exc:  # network, missing dataset, refused script: all one message
        if hub_offline():
            reason = (
                "the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set) and no "
                "cached copy was found"
            )
        else:
            reason = _short(exc)
        raise UsageError(
            f"cannot load {where}: {reason}; {BUNDLED_HINT} (or --set corpus_dir=PATH reads "
            "local copies, PATH/<source>/train.*)"
        ) from None


def _missing_column(spec: HFSpec, source: str, table: Any, name: str) -> UsageError:
    columns = ", ".join(sorted(getattr(table, "column_names", None) or [])) or "none"
    return UsageError(
        f"Hugging Face dataset {spec.label!r} for source {source!r} has no column {name!r} "
        f"(columns: {columns}); {BUNDLED_HINT}"
    )


def _kept_rows(spec: HFSpec, source: str, table: Any) -> list[int]:
    """The indices of the rows load_data keeps, in the split's order."""
    names = getattr(table, "column_names", None)
    if names is not None:
        for name in spec.columns:
            if name not in names:
                raise _missing_column(spec, source, table, name)
    if not spec.filtered:
        return list(range(len(table)))
    rows: Iterable[Row] = table.select_columns(list(spec.columns)) if names else table
    return [index for index, row in enumerate(rows) if spec.text(row) is not None]


def task_order(task: str, sources: Iterable[str]) -> list[str]:
    """The sources the seeded generator shuffles for a task, in order, up to the last needed.

    The released order first (REFERENCE_SOURCES), then any other needed source by name.
    """
    needed = set(sources)
    released = REFERENCE_SOURCES.get(task, ())
    order = [*released, *sorted(needed - set(released))]
    last = max((i for i, source in enumerate(order) if source in needed), default=-1)
    return order[: last + 1]


def shuffled_sources(task: str, sources: Iterable[str], interleave: bool = False) -> list[str]:
    """The sources a task's generator shuffles: up to the last needed (``task_order``), or,
    to interleave the users as released, all of the task's released sources."""
    needed = set(sources)
    if interleave and interleaves(task, needed):
        return list(REFERENCE_SOURCES[task])
    return task_order(task, needed)


def interleaves(task: str, sources: Iterable[str]) -> bool:
    """Whether the released interleaving applies: every needed source is a released one."""
    return task in REFERENCE_SOURCES and set(sources) <= set(REFERENCE_SOURCES[task])


Draws = dict[tuple[str, int, str], list[int]]
Orders = dict[tuple[str, int], list[tuple[str, int]]]


def reference_draws(
    kept: Mapping[str, Sequence[int]],
    wanted: Mapping[str, Iterable[str]],
    seeds: Iterable[int],
    per_user: int,
    interleaved: Iterable[str] = (),
) -> tuple[Draws, Orders]:
    """What get_dataset gives each task and seed, as row indices.

    Draws: (task, seed, source) -> the rows its user gets, in order: one
    ``numpy.random.default_rng(seed)`` shuffles each source's kept rows in the task's order,
    and a needed source keeps the first ``per_user``. Orders, for the tasks in
    ``interleaved`` (all of whose sources are released ones): (task, seed) -> the needed
    sources' (source, row) in the order the same generator then shuffles all users'
    instances into (get_dataset, when retrieval_mode is not exact_match).
    """
    import numpy as np

    draws: Draws = {}
    orders: Orders = {}
    interleaved = set(interleaved)
    for task, sources in wanted.items():
        needed = set(sources)
        interleave = task in interleaved and interleaves(task, needed)
        for seed in seeds:
            rng = np.random.default_rng(seed=seed)
            combined: list[tuple[str, int]] = []
            for source in shuffled_sources(task, needed, interleave):
                rows = list(kept[source])
                rng.shuffle(rows)  # a list, shuffled in place as the released code's list is
                if source in needed:
                    draws[(task, seed, source)] = rows[:per_user]
                combined += [(source, row) for row in rows[:per_user]]
            if interleave:
                rng.shuffle(combined)
                orders[(task, seed)] = [(src, row) for src, row in combined if src in needed]
    return draws, orders


def _spec(source: str) -> HFSpec:
    if source not in DATASET_SPECS:
        known = ", ".join(DATASET_SPECS)
        raise UsageError(f"no Hugging Face dataset for source {source!r}; known sources: {known}")
    return DATASET_SPECS[source]


def load_hf_corpus(
    wanted: Mapping[str, Iterable[str]],
    seeds: Sequence[int],
    per_user: int,
    *,
    data_dir: Path | None = None,
    load_dataset: Callable[..., Any] | None = None,
    interleaved: Iterable[str] = (),
) -> Corpus:
    """The documents each (task, seed, source) user gets from the paper's datasets.

    ``wanted``: task -> the sources its users need. ``interleaved``: the tasks whose users
    also get the released interleaving (all users in one episode). ``data_dir``: read each source from
    ``<data_dir>/<source>/`` instead of the Hub. ``load_dataset`` defaults to
    ``datasets.load_dataset``; it must return a ``datasets.Dataset`` (or rows with
    ``len``).
    """
    if per_user < 1:
        raise UsageError(f"documents per user must be at least 1, got {per_user}")
    wanted = {task: sorted(set(sources)) for task, sources in wanted.items() if sources}
    interleaved = set(interleaved)
    order = dict.fromkeys(
        source
        for task, srcs in wanted.items()
        for source in shuffled_sources(task, srcs, task in interleaved)
    )
    specs = {source: _spec(source) for source in order}
    if load_dataset is None:
        load_dataset = _default_load_dataset()
    tables = {source: _load(spec, source, load_dataset, data_dir) for source, spec in specs.items()}
    kept = {source: _kept_rows(specs[source], source, tables[source]) for source in specs}
    for task, sources in wanted.items():
        for source in sources:
            if len(kept[source]) < per_user:
                raise UsageError(
                    f"Hugging Face dataset {specs[source].label!r} for source {source!r} has "
                    f"{len(kept[source])} {specs[source].rule}, {per_user} needed per user "
                    f"({task}); {BUNDLED_HINT}"
                )
    rows, orders = reference_draws(kept, wanted, seeds, per_user, interleaved)
    documents: dict[str, Document] = {}
    for (_task, _seed, source), indices in rows.items():
        for index in indices:
            doc_id = f"{source}-hf-{index}"
            if doc_id not in documents:
                text = specs[source].text(tables[source][index])
                assert text is not None  # a kept row
                documents[doc_id] = Document(id=doc_id, source=source, text=text.strip())
    sequences = {
        key: [f"{key[2]}-hf-{index}" for index in indices] for key, indices in rows.items()
    }
    interleavings = {
        key: [(source, f"{source}-hf-{index}") for source, index in order]
        for key, order in orders.items()
    }
    return Corpus(list(documents.values()), sequences, interleavings)
