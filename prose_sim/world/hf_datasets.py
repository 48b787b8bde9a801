"""Documents from the paper's Hugging Face datasets, as a ``Corpus``.

The ``datasets`` library is optional: it is imported only when a dataset is
actually loaded (``pip install 'prose-sim[hf]'``); without it, or without
network access, use ``corpus = "bundled"``.

What the paper's released data loader (``load_data`` in its ``data_utils``;
found in the code index) reads, and what this module does with it:

=============  ==============================  ==============  =====  =================================
source         HF path (config)                text field(s)   split  filter here
=============  ==============================  ==============  =====  =================================
cnn_dailymail  cnn_dailymail (3.0.0)           article         train  non-empty
slf5k          JeremyAlain/SLF5K               post            train  over 150 words
wikipedia      wikipedia (20220301.simple)     text            train  500-800 words, both included
ml_arxiv       CShorten/ML-ArXiv-Papers        abstract        train  non-empty
imdb           imdb                            text            train  over 150 words
ccby           orieg/elsevier-oa-cc-by         title,          train  title, abstract and highlights
                                               abstract,              all non-empty
                                               author_highlights
ampere         launch/ampere                   text            train  non-empty
paper_tweet    nitsanb/paper_tweet             text            train  see below
=============  ==============================  ==============  =====  =================================

Verified in the paper's released code: every path, config, split and field
above (including ``author_highlights``, a list of strings, and ampere's
``text``, a list of proposition strings joined with spaces), and that ccby
keeps only articles with highlights. ``orieg/elsevier-oa-cc-by``'s
``dataset_infos.json`` gives ``title`` and ``abstract`` as strings and its card
lists the author highlights; the ampere card says each of its 400 ICLR 2018
reviews is split into propositions; ``nitsanb/paper_tweet`` holds
``train.txt``/``val.txt``/``test.txt``, so the ``text`` loader gives one
``text`` column, one line per row.

Differences from the released code, all from this project's design brief:
the released code keeps Wikipedia pages of 501-699 words and filters neither
SLF5K nor IMDB; here Wikipedia keeps 500-800 words (inclusive) and SLF5K and
IMDB keep texts over 150 words. ccby's text is ``"Title: ...\\n\\nAbstract:
...\\n\\nHighlights: ..."`` (the released code wrote ``" My title: ... My
abstract: ... My highlights: ..."``). IMDB's ``<br />`` tags become line breaks
before counting words.

Assumptions, not verified against the data itself (the Hub was not reachable
from here):

* paper_tweet lines: the released code skips lines that contain ``[`` (they
  look like Python lists of a thread's tweets) and takes the text between the
  first and the last double quote, dropping two more characters before the
  closing quote. Here rows with ``[`` are skipped too, the text between the
  outer double quotes is kept when there is such a pair, and literal ``\\n``
  escapes (our guess for those two characters) become spaces; then URLs and
  PaperTweet's ``<LINK>`` placeholders are removed and whitespace collapsed.
  The tweet column is the first of ``text``, ``tweet``, ``Tweet``, ``Tweets``
  that the row has.
* ccby's abstract and highlights may be a string or a list of strings; a
  list abstract is joined with spaces, list highlights become sentences (a
  final period added where missing) joined with spaces.
* ``wikipedia`` and ``orieg/elsevier-oa-cc-by`` are script-based datasets on
  the Hub; ``datasets`` 4.0 and later refuse dataset scripts, so with a recent
  ``datasets`` those two sources fail to load (a ``UsageError`` giving the
  reason) unless the Hub serves them another way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prose_sim.errors import UsageError
from prose_sim.extras import missing_extra
from prose_sim.world.corpus import Corpus, Document

Row = Mapping[str, Any]

_BUNDLED_HINT = 'use corpus = "bundled" to run on the bundled documents'


@dataclass(frozen=True)
class HFSpec:
    """Where a source's documents are on the Hub and how to read one row."""

    path: str
    config: str | None
    split: str
    text: Callable[[Row], str | None]  # a row's document text; None skips the row
    keep: Callable[[str], bool]  # the source's filter on that text
    rule: str  # the filter, in words, for error messages

    @property
    def label(self) -> str:
        """The dataset as SOURCES names it: path, with the config in brackets."""
        return self.path if self.config is None else f"{self.path} ({self.config})"


# -- reading fields ---------------------------------------------------------


def _column(row: Row, *names: str) -> Any:
    """The first of names that the row has; KeyError naming the first if none."""
    for name in names:
        if name in row:
            return row[name]
    raise KeyError(names[0])


def _words(text: str) -> int:
    return len(text.split())


def _joined(value: Any, sep: str = " ") -> str:
    """A string field, or a list of strings joined with sep; stripped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if not isinstance(value, (list, tuple)):
        return str(value).strip()
    parts = (str(part).strip() for part in value if part is not None)
    return sep.join(part for part in parts if part)


def _sentences(value: Any) -> str:
    """Highlights as prose: list items end with a period and are joined."""
    if not isinstance(value, (list, tuple)):
        return _joined(value)
    items = [_joined(item) for item in value if item is not None]
    return " ".join(item if item[-1] in ".!?" else item + "." for item in items if item)


def _field(name: str) -> Callable[[Row], str | None]:
    def text(row: Row) -> str | None:
        return _joined(_column(row, name)) or None

    return text


# -- per-source text builders -----------------------------------------------

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _imdb_text(row: Row) -> str | None:
    text = _BR.sub("\n", _joined(_column(row, "text")))
    return "\n".join(line.strip() for line in text.splitlines()).strip() or None


def _ccby_text(row: Row) -> str | None:
    title = _joined(_column(row, "title"))
    abstract = _joined(_column(row, "abstract"))
    highlights = _sentences(_column(row, "author_highlights", "highlights"))
    if not (title and abstract and highlights):
        return None
    return f"Title: {title}\n\nAbstract: {abstract}\n\nHighlights: {highlights}"


_TWEET_COLUMNS = ("text", "tweet", "Tweet", "Tweets")
_LINK = re.compile(r"https?://\S+|www\.\S+|<LINK>", re.IGNORECASE)


def _paper_tweet_text(row: Row) -> str | None:
    raw = _joined(_column(row, *_TWEET_COLUMNS))
    if "[" in raw:  # a thread written as a Python list; the released code skips these
        return None
    first, last = raw.find('"'), raw.rfind('"')
    if first != last:
        raw = raw[first + 1 : last]
    raw = raw.replace('""', '"').replace("\\n", " ")
    return " ".join(_LINK.sub(" ", raw).split()) or None


# -- per-source filters -------------------------------------------------------


def _any(text: str) -> bool:
    return True


def _over_150_words(text: str) -> bool:
    return _words(text) > 150


def _wikipedia_length(text: str) -> bool:
    return 500 <= _words(text) <= 800


DATASET_SPECS: dict[str, HFSpec] = {
    "cnn_dailymail": HFSpec(
        "cnn_dailymail", "3.0.0", "train", _field("article"), _any, "non-empty articles"
    ),
    "slf5k": HFSpec(
        "JeremyAlain/SLF5K", None, "train", _field("post"), _over_150_words, "posts over 150 words"
    ),
    "wikipedia": HFSpec(
        "wikipedia",
        "20220301.simple",
        "train",
        _field("text"),
        _wikipedia_length,
        "pages of 500-800 words",
    ),
    "ml_arxiv": HFSpec(
        "CShorten/ML-ArXiv-Papers", None, "train", _field("abstract"), _any, "non-empty abstracts"
    ),
    "imdb": HFSpec("imdb", None, "train", _imdb_text, _over_150_words, "reviews over 150 words"),
    "ccby": HFSpec(
        "orieg/elsevier-oa-cc-by",
        None,
        "train",
        _ccby_text,
        _any,
        "articles with a title, abstract and highlights",
    ),
    "ampere": HFSpec("launch/ampere", None, "train", _field("text"), _any, "non-empty reviews"),
    "paper_tweet": HFSpec(
        "nitsanb/paper_tweet", None, "train", _paper_tweet_text, _any, "non-empty single tweets"
    ),
}


# -- loading --------------------------------------------------------------------


def _default_load_dataset() -> Callable[..., Any]:
    try:
        import datasets
    except ImportError:
        needs = missing_extra("the Hugging Face corpus (the datasets library)", "hf")
        raise UsageError(f"{needs}, or {_BUNDLED_HINT}") from None
    return datasets.load_dataset


def _short(exc: BaseException, limit: int = 200) -> str:
    """One line naming the exception, at most limit characters."""
    message = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _load(spec: HFSpec, source: str, load_dataset: Callable[..., Any]) -> Any:
    try:
        return load_dataset(spec.path, name=spec.config, split=spec.split)
    except Exception as exc:  # network, missing dataset, refused script: all one message
        raise UsageError(
            f"cannot load Hugging Face dataset {spec.label!r} for source {source!r}: "
            f"{_short(exc)}; {_BUNDLED_HINT}"
        ) from None


def _documents(source: str, spec: HFSpec, rows: Iterable[Row], limit: int) -> list[Document]:
    """The first limit rows that give text passing the filter, in row order."""
    docs: list[Document] = []
    for index, row in enumerate(rows):
        if len(docs) >= limit:
            break
        try:
            text = spec.text(row)
        except KeyError as exc:
            columns = ", ".join(sorted(row)) or "none"
            raise UsageError(
                f"Hugging Face dataset {spec.label!r} for source {source!r} has no column "
                f"{exc.args[0]!r} (columns: {columns}); {_BUNDLED_HINT}"
            ) from None
        if text is not None and spec.keep(text):
            docs.append(Document(id=f"{source}-hf-{index}", source=source, text=text))
    return docs


def _spec(source: str) -> HFSpec:
    if source not in DATASET_SPECS:
        known = ", ".join(DATASET_SPECS)
        raise UsageError(f"no Hugging Face dataset for source {source!r}; known sources: {known}")
    return DATASET_SPECS[source]


def load_hf_corpus(
    sources: Iterable[str],
    max_per_source: int = 200,
    load_dataset: Callable[..., Any] | None = None,
) -> Corpus:
    """A Corpus of up to max_per_source documents per source from the Hub.

    load_dataset defaults to ``datasets.load_dataset``; it is called as
    ``load_dataset(path, name=config, split=split)`` and must return an
    iterable of row mappings (a ``datasets.Dataset``).
    """
    if max_per_source < 1:
        raise UsageError(f"max_per_source must be at least 1, got {max_per_source}")
    wanted = list(dict.fromkeys(sources))
    specs = {source: _spec(source) for source in wanted}
    if load_dataset is None:
        load_dataset = _default_load_dataset()
    documents: list[Document] = []
    for source, spec in specs.items():
        docs = _documents(source, spec, _load(spec, source, load_dataset), max_per_source)
        if not docs:
            raise UsageError(
                f"Hugging Face dataset {spec.label!r} for source {source!r} has no {spec.rule}; "
                f"{_BUNDLED_HINT}"
            )
        documents.extend(docs)
    return Corpus(documents)
