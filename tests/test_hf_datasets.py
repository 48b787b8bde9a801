"""The Hugging Face corpus loader, on small local datasets (no network)."""

from __future__ import annotations

import sys

import pytest

datasets = pytest.importorskip("datasets")

from prose_sim.errors import UsageError  # noqa: E402
from prose_sim.extras import install_command  # noqa: E402
from prose_sim.world.corpus import SOURCES, Corpus  # noqa: E402
from prose_sim.world.hf_datasets import DATASET_SPECS, load_hf_corpus  # noqa: E402


def words(n: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


class FakeHub:
    """A load_dataset stand-in: path -> local Dataset, recording each call."""

    def __init__(self, tables: dict[str, dict[str, list]]):
        self.tables = {path: datasets.Dataset.from_dict(cols) for path, cols in tables.items()}
        self.calls: list[tuple[str, str | None, str | None]] = []

    def __call__(self, path, name=None, split=None, **kwargs):
        self.calls.append((path, name, split))
        if path not in self.tables:
            raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")
        return self.tables[path]


def load(source: str, columns: dict[str, list], max_per_source: int = 200) -> Corpus:
    hub = FakeHub({DATASET_SPECS[source].path: columns})
    return load_hf_corpus([source], max_per_source=max_per_source, load_dataset=hub)


def ids(corpus: Corpus, source: str) -> list[str]:
    return sorted(d.id for d in corpus.documents(source))


def test_specs_cover_every_source_with_its_named_dataset():
    assert set(DATASET_SPECS) == set(SOURCES)
    for source, spec in DATASET_SPECS.items():
        assert spec.label == SOURCES[source].hf_dataset
        assert spec.split == "train"


def test_loader_is_called_with_path_config_and_split():
    hub = FakeHub(
        {"cnn_dailymail": {"article": ["A short article."], "highlights": ["x"], "id": ["a"]}}
    )
    corpus = load_hf_corpus(["cnn_dailymail"], load_dataset=hub)
    assert hub.calls == [("cnn_dailymail", "3.0.0", "train")]
    [doc] = corpus.documents("cnn_dailymail")
    assert (doc.id, doc.source, doc.text) == (
        "cnn_dailymail-hf-0",
        "cnn_dailymail",
        "A short article.",
    )


def test_slf5k_keeps_posts_over_150_words():
    corpus = load("slf5k", {"post": [words(150), words(151), words(10)], "title": ["a", "b", "c"]})
    assert ids(corpus, "slf5k") == ["slf5k-hf-1"]
    assert corpus.documents("slf5k")[0].words == 151


def test_wikipedia_keeps_pages_of_500_to_800_words():
    lengths = [499, 500, 800, 801]
    corpus = load("wikipedia", {"text": [words(n) for n in lengths], "title": ["t"] * 4})
    assert ids(corpus, "wikipedia") == ["wikipedia-hf-1", "wikipedia-hf-2"]
    assert sorted(d.words for d in corpus.documents("wikipedia")) == [500, 800]


def test_imdb_keeps_reviews_over_150_words_and_drops_br_tags():
    reviews = [words(150), words(75, "a") + "<br /><br />" + words(76, "b"), words(200)]
    corpus = load("imdb", {"text": reviews, "label": [0, 1, 0]})
    assert ids(corpus, "imdb") == ["imdb-hf-1", "imdb-hf-2"]
    doc = corpus.get("imdb", "imdb-hf-1")
    assert "<br" not in doc.text
    assert doc.text == words(75, "a") + "\n\n" + words(76, "b")


def test_ml_arxiv_reads_abstracts():
    corpus = load("ml_arxiv", {"title": ["T"], "abstract": ["  We propose a method.  "]})
    assert corpus.get("ml_arxiv", "ml_arxiv-hf-0").text == "We propose a method."


def test_ccby_text_from_title_abstract_and_list_highlights():
    corpus = load(
        "ccby",
        {
            "title": ["Soil carbon", "No highlights here"],
            "abstract": ["We measure soil carbon.", "Something."],
            "author_highlights": [["Carbon rises", "Roots matter."], []],
        },
    )
    assert ids(corpus, "ccby") == ["ccby-hf-0"]
    assert corpus.get("ccby", "ccby-hf-0").text == (
        "Title: Soil carbon\n\nAbstract: We measure soil carbon.\n\nHighlights: Carbon rises. Roots matter."
    )


def test_ccby_text_from_string_highlights_and_list_abstract():
    corpus = load(
        "ccby",
        {
            "title": ["Rivers"],
            "abstract": [["First part.", "Second part."]],
            "highlights": ["Rivers move sediment."],
        },
    )
    assert corpus.get("ccby", "ccby-hf-0").text == (
        "Title: Rivers\n\nAbstract: First part. Second part.\n\nHighlights: Rivers move sediment."
    )


def test_ampere_joins_review_propositions():
    corpus = load(
        "ampere", {"doc_id": ["r1"], "text": [["The paper is clear.", " Results are weak. "]]}
    )
    assert corpus.get("ampere", "ampere-hf-0").text == "The paper is clear. Results are weak."


def test_paper_tweet_extracts_the_tweet_text():
    lines = [
        'abstract text "Our new paper is out! <LINK> We show X https://t.co/abc\\n"',
        "['first tweet', 'second tweet']",
        "  Plain   tweet about\tour work  http://arxiv.org/abs/1234.5678 ",
        '"https://t.co/onlylink"',
        '"New work ""Graph nets"" is out"',
    ]
    corpus = load("paper_tweet", {"text": lines})
    texts = {d.id: d.text for d in corpus.documents("paper_tweet")}
    assert texts == {
        "paper_tweet-hf-0": "Our new paper is out! We show X",
        "paper_tweet-hf-2": "Plain tweet about our work",
        "paper_tweet-hf-4": 'New work "Graph nets" is out',
    }


def test_paper_tweet_falls_back_to_a_tweet_column():
    corpus = load(
        "paper_tweet", {"id": ["1"], "tweet": ["New preprint on graphs www.example.org/x"]}
    )
    assert corpus.get("paper_tweet", "paper_tweet-hf-0").text == "New preprint on graphs"


def test_max_per_source_takes_the_first_passing_rows():
    posts = [words(200, f"p{i}_") if i != 1 else words(5) for i in range(6)]
    corpus = load("slf5k", {"post": posts}, max_per_source=3)
    assert ids(corpus, "slf5k") == ["slf5k-hf-0", "slf5k-hf-2", "slf5k-hf-3"]
    assert corpus.get("slf5k", "slf5k-hf-2").text == posts[2]


def test_several_sources_into_one_corpus():
    hub = FakeHub(
        {
            "imdb": {"text": [words(151)], "label": [1]},
            "launch/ampere": {"text": [["Good paper."]], "doc_id": ["d"]},
        }
    )
    corpus = load_hf_corpus(["imdb", "ampere", "imdb"], load_dataset=hub)
    assert corpus.sources() == ["ampere", "imdb"]
    assert [call[0] for call in hub.calls] == ["imdb", "launch/ampere"]


def test_unreachable_dataset_is_a_one_line_usage_error():
    def offline(path, name=None, split=None, **kwargs):
        raise ConnectionError(
            f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)\nmore detail"
        )

    with pytest.raises(UsageError) as info:
        load_hf_corpus(["wikipedia"], load_dataset=offline)
    message = str(info.value)
    assert "'wikipedia (20220301.simple)'" in message
    assert "'wikipedia'" in message
    assert "ConnectionError" in message
    assert 'use corpus = "bundled"' in message
    assert "\n" not in message
    assert "Traceback" not in message
    assert info.value.__cause__ is None


def test_missing_dataset_names_it():
    with pytest.raises(
        UsageError, match=r"cannot load Hugging Face dataset 'JeremyAlain/SLF5K' for source 'slf5k'"
    ):
        load_hf_corpus(["slf5k"], load_dataset=FakeHub({}))


def test_no_documents_after_filtering_is_a_usage_error():
    with pytest.raises(UsageError, match=r"'imdb'.*reviews over 150 words.*bundled"):
        load("imdb", {"text": [words(20), words(150)], "label": [0, 1]})


def test_missing_column_is_a_usage_error():
    with pytest.raises(UsageError, match=r"no column 'post' \(columns: body, title\)"):
        load("slf5k", {"title": ["a"], "body": [words(200)]})


def test_unknown_source_and_bad_cap():
    with pytest.raises(UsageError, match="no Hugging Face dataset for source 'reddit'"):
        load_hf_corpus(["reddit"], load_dataset=FakeHub({}))
    with pytest.raises(UsageError, match="max_per_source"):
        load_hf_corpus(["imdb"], max_per_source=0, load_dataset=FakeHub({}))


def test_without_the_datasets_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(UsageError) as caught:
        load_hf_corpus(["imdb"])
    message = str(caught.value)
    assert f"needs the hf extra: {install_command('hf')}, or" in message
    assert 'corpus = "bundled"' in message
