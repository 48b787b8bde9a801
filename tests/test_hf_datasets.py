"""The paper's documents as the released code reads them (``tasks/writing/dataset_helpers.py:
load_data``, ``summarization.py`` / ``email_writing.py: get_dataset``).

Every test reads small local copies of the datasets (tests/fixtures/hf/<source>/, written by
make_fixtures.py in each dataset's own schema and file format) through ``datasets`` itself.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
np = pytest.importorskip("numpy")

from prose_sim.errors import UsageError  # noqa: E402
from prose_sim.extras import install_command  # noqa: E402
from prose_sim.world.corpus import SOURCES, Corpus  # noqa: E402
from prose_sim.world.hf_datasets import (  # noqa: E402
    DATASET_SPECS,
    REFERENCE_SOURCES,
    load_hf_corpus,
    task_order,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hf"

# the rows load_data keeps of each fixture, by row index (worked out by hand from make_fixtures.py)
KEPT = {
    "cnn_dailymail": [0, 1, 2, 3, 4, 5, 6],  # every row
    "slf5k": [0, 1, 2, 3, 4, 5],  # every row: the filtered list is built but never used
    "wikipedia": [1, 2, 3, 6],  # 501, 650, 799 and 720 words; not 500, 800, 300, 900
    "ml_arxiv": [0, 1, 2, 3, 4],
    "imdb": [1, 3, 4, 5],  # over 150 words: 151 (with <br /> tags), 300, 200, 180
    "ccby": [0, 2, 3],  # with author highlights
    "ampere": [0, 1, 2, 3, 4],
    "paper_tweet": [0, 3, 4, 5],  # not the thread ("[") nor the line without a quote
}
SOURCE_OF_PATH = {spec.path: source for source, spec in DATASET_SPECS.items()}


def task_of(source: str) -> str:
    return next(task for task, sources in REFERENCE_SOURCES.items() if source in sources)


def local(
    wanted: dict[str, list[str]],
    seeds=(1235,),
    per_user: int = 2,
    data_dir: Path = FIXTURES,
    interleaved=(),
) -> Corpus:
    return load_hf_corpus(wanted, list(seeds), per_user, data_dir=data_dir, interleaved=interleaved)


def every_kept(source: str, seed: int = 1235) -> dict[str, str]:
    """All the rows load_data keeps of a source's fixture: id -> document text."""
    task = task_of(source)
    corpus = local({task: [source]}, (seed,), per_user=len(KEPT[source]))
    return {d.id: d.text for d in corpus.draw(source, len(KEPT[source]), seed, "u", task=task)}


class Hub:
    """``datasets.load_dataset`` itself, with each Hub path read from its local copy, recording
    the arguments it was called with."""

    def __init__(self):
        self.calls: list[tuple[str, str | None, str | None]] = []

    def __call__(self, path, name=None, split=None, **kwargs):
        self.calls.append((path, name, split))
        return datasets.load_dataset(str(FIXTURES / SOURCE_OF_PATH[path]), split=split)


# --- the datasets: path, config, split, schema ------------------------------------------


def test_specs_cover_every_source_with_its_named_dataset():
    assert set(DATASET_SPECS) == set(SOURCES)
    for source, spec in DATASET_SPECS.items():
        assert spec.label == SOURCES[source].hf_dataset
        assert spec.split == "train"  # get_dataset: load_data(..., split="train")


@pytest.mark.parametrize("source", sorted(DATASET_SPECS))
def test_each_source_reads_its_datasets_real_schema_from_local_files(source):
    folder = FIXTURES / source
    table = datasets.load_dataset(str(folder), split="train")
    assert set(DATASET_SPECS[source].columns) <= set(table.column_names)
    assert sorted(every_kept(source)) == sorted(f"{source}-hf-{i}" for i in KEPT[source])


def test_the_fixtures_have_the_hub_datasets_field_types():
    def features(source):
        return datasets.load_dataset(str(FIXTURES / source), split="train").features

    assert features("imdb")["label"] == datasets.ClassLabel(names=["neg", "pos"])
    assert features("ampere")["text"].feature == datasets.Value("string")  # a list of strings
    assert features("ccby")["author_highlights"].feature == datasets.Value("string")
    assert features("ml_arxiv")["Unnamed: 0.1"] == datasets.Value("int64")
    assert features("paper_tweet") == datasets.Features({"text": datasets.Value("string")})
    for source, column in [("cnn_dailymail", "id"), ("wikipedia", "id"), ("slf5k", "post")]:
        assert features(source)[column] == datasets.Value("string")


def test_the_hub_is_asked_for_path_config_and_train_split():
    hub = Hub()
    load_hf_corpus({"summarization": ["wikipedia"]}, [1235], 2, load_dataset=hub)
    # wikipedia is the third source the released summarization task shuffles
    assert hub.calls == [
        ("cnn_dailymail", "3.0.0", "train"),
        ("JeremyAlain/SLF5K", None, "train"),
        ("wikipedia", "20220301.simple", "train"),
    ]


@pytest.mark.parametrize(("version", "trusted"), [("3.6.0", True), ("4.0.0", False)])
def test_loading_script_datasets_are_trusted_as_released_where_datasets_runs_scripts(
    monkeypatch, version, trusted
):
    # load_data: load_dataset("JeremyAlain/SLF5K", trust_remote_code=True); cnn_dailymail without
    monkeypatch.setattr(datasets, "__version__", version)
    seen = {}

    def hub(path, name=None, split=None, **kwargs):
        seen[path] = kwargs
        return datasets.load_dataset(str(FIXTURES / SOURCE_OF_PATH[path]), split=split)

    load_hf_corpus({"summarization": ["slf5k"]}, [1], 1, load_dataset=hub)
    assert seen["cnn_dailymail"] == {}
    assert seen["JeremyAlain/SLF5K"] == ({"trust_remote_code": True} if trusted else {})


# --- load_data's filters and texts -------------------------------------------------------


def test_cnn_dailymail_keeps_every_article():
    docs = every_kept("cnn_dailymail")
    assert len(docs) == 7 and all(text.startswith("(NEWS) -- ") for text in docs.values())


def test_slf5k_keeps_short_posts_because_load_data_never_uses_its_filtered_list():
    words = {doc_id: len(text.split()) for doc_id, text in every_kept("slf5k").items()}
    assert words["slf5k-hf-1"] == 90 and words["slf5k-hf-3"] == 150


def test_wikipedia_keeps_pages_of_more_than_500_and_fewer_than_800_words():
    words = sorted(len(text.split()) for text in every_kept("wikipedia").values())
    assert words == [501, 650, 720, 799]


def test_imdb_keeps_reviews_over_150_words_with_their_br_tags():
    docs = every_kept("imdb")
    assert "<br /><br />" in docs["imdb-hf-1"]  # load_data does not clean the text
    # 76 + 75 words, and the tags count: "<br /><br />" adds one whitespace-separated token
    assert len(docs["imdb-hf-1"].split()) == 152


def test_ccby_is_title_abstract_and_highlights_in_load_datas_words():
    docs = every_kept("ccby")
    text = docs["ccby-hf-0"]
    assert text.startswith("My title: A field study number 0. My abstract: ")
    assert text.endswith(
        " My highlights: Herons return earlier each spring. Marsh water levels explain the shift"
    )


def test_ampere_joins_the_reviews_propositions_with_spaces():
    table = datasets.load_dataset(str(FIXTURES / "ampere"), split="train")
    assert every_kept("ampere")["ampere-hf-2"] == " ".join(table[2]["text"])


def test_paper_tweet_takes_the_released_slice_between_the_quotes():
    assert every_kept("paper_tweet") == {
        # after the first quote, up to two characters before the last: the literal "\n" goes
        "paper_tweet-hf-0": "New preprint: one sparse code, many tasks! <LINK>",
        "paper_tweet-hf-3": "We model ferries as graphs and it works",
        "paper_tweet-hf-4": "Students built a weather station; data are open",
        "paper_tweet-hf-5": "",  # one quote only: an empty slice, which load_data keeps
    }


def test_the_text_is_stripped_as_the_task_instance_strips_it():
    table = datasets.load_dataset(str(FIXTURES / "ml_arxiv"), split="train")
    raw = table[0]["abstract"]
    assert raw != raw.strip()
    assert every_kept("ml_arxiv")["ml_arxiv-hf-0"] == raw.strip()


# --- get_dataset's seeded shuffle ----------------------------------------------------------


def released_draw(task: str, seed: int, per_user: int) -> dict[str, list[str]]:
    """get_dataset: one default_rng(seed) shuffles each source's kept rows in the task's
    order; each user takes the first per_user."""
    rng = np.random.default_rng(seed=seed)
    out = {}
    for source in REFERENCE_SOURCES[task]:
        rows = [f"{source}-hf-{i}" for i in KEPT[source]]
        rng.shuffle(rows)
        out[source] = rows[:per_user]
    return out


@pytest.mark.parametrize("task", sorted(REFERENCE_SOURCES))
@pytest.mark.parametrize("seed", [1235, 9328, 235])
def test_each_user_gets_the_first_documents_of_its_source_shuffled_by_the_seed(task, seed):
    corpus = local({task: list(REFERENCE_SOURCES[task])}, (seed,), per_user=3)
    for source, expected in released_draw(task, seed, 3).items():
        assert [d.id for d in corpus.draw(source, 3, seed, "u", task=task)] == expected


def test_the_documents_differ_per_seed():
    seeds = [1235, 9328, 235, 6936, 2045]
    corpus = local({"summarization": ["cnn_dailymail"]}, seeds, per_user=3)
    draws = {
        tuple(d.id for d in corpus.draw("cnn_dailymail", 3, s, "u", "summarization")) for s in seeds
    }
    assert len(draws) > 1


def test_slf5k_gets_other_documents_in_each_task_as_its_place_in_the_order_differs():
    both = {"summarization": ["slf5k"], "email_writing": ["slf5k"]}
    corpus = local(both, (1235,), per_user=3)
    for task in both:
        ids = [d.id for d in corpus.draw("slf5k", 3, 1235, "u", task=task)]
        assert ids == released_draw(task, 1235, 3)["slf5k"]


def test_a_source_needed_alone_still_follows_the_sources_before_it():
    assert task_order("summarization", ["imdb"]) == list(REFERENCE_SOURCES["summarization"])
    assert task_order("email_writing", ["slf5k"]) == ["slf5k"]
    alone = local({"summarization": ["imdb"]}, (9328,), per_user=2)
    all_five = local({"summarization": list(REFERENCE_SOURCES["summarization"])}, (9328,))
    assert alone.draw("imdb", 2, 9328, "u", "summarization") == all_five.draw(
        "imdb", 2, 9328, "u", "summarization"
    )
    assert alone.sources() == ["imdb"]  # the others are read for their counts only


def test_the_draw_is_the_same_whatever_the_user_key():
    corpus = local({"email_writing": ["ampere"]})
    assert corpus.draw("ampere", 2, 1235, "a", "email_writing") == corpus.draw(
        "ampere", 2, 1235, "b", "email_writing"
    )


def released_interleaving(task: str, seed: int, per_user: int, users: set[str]) -> list[str]:
    """get_dataset with a retrieval mode other than exact_match: after the per-source
    shuffles, the same generator shuffles the concatenated first rows of every source."""
    rng = np.random.default_rng(seed=seed)
    combined = []
    for source in REFERENCE_SOURCES[task]:
        rows = [f"{source}-hf-{i}" for i in KEPT[source]]
        rng.shuffle(rows)
        combined += rows[:per_user]
    rng.shuffle(combined)
    return [doc_id for doc_id in combined if doc_id.rsplit("-hf-", 1)[0] in users]


@pytest.mark.parametrize("seed", [1235, 9328])
def test_users_sharing_an_episode_are_interleaved_as_released(seed):
    users = {"cnn_dailymail", "imdb"}
    corpus = local({"summarization": sorted(users)}, (seed,), 2, interleaved=["summarization"])
    order = corpus.interleaving("summarization", seed)
    assert [doc_id for _, doc_id in order] == released_interleaving("summarization", seed, 2, users)
    # the per-user documents are still the first of each source's shuffle
    for source, expected in released_draw("summarization", seed, 2).items():
        if source in users:
            assert [d.id for d in corpus.draw(source, 2, seed, "u", "summarization")] == expected


def test_no_interleaving_unless_asked():
    corpus = local({"summarization": ["cnn_dailymail", "imdb"]})
    assert corpus.interleaving("summarization", 1235) is None


def test_an_episode_of_all_users_runs_their_instances_in_the_released_order(tmp_path):
    import anyio

    from prose_sim.config import RunOptions
    from prose_sim.eventlog import read_events
    from prose_sim.events import InstanceStarted
    from prose_sim.runtime.prepare import prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import scenario_from_dict

    users = ["cnn_dailymail", "imdb"]
    raw = {
        "name": "interleaved",
        "seeds": [9328],
        "demonstrations_per_user": 2,
        "corpus": "huggingface",
        "corpus_dir": str(FIXTURES),
        "tasks": {"summarization": {"personas": users}},
        "methods": {"cipher1": {"retrieval_mode": "most_recent"}},  # one episode, all users
        "metrics": {"bertscore": "", "judge": False},
    }
    scenario = scenario_from_dict(raw, "interleaving test")
    anyio.run(lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off"))))
    started = [
        e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, InstanceStarted)
    ]
    assert [e.document_id for e in started] == released_interleaving(
        "summarization", 9328, 2, set(users)
    )
    assert [e.persona for e in started] == [e.document_id.split("-hf-")[0] for e in started]


# --- errors: one line each, naming what to do ------------------------------------------------


def test_an_unreachable_hub_is_one_line_naming_the_bundled_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty_cache = functools.partial(datasets.load_dataset, cache_dir=str(tmp_path))
    with pytest.raises(UsageError) as info:
        load_hf_corpus({"summarization": ["cnn_dailymail"]}, [1], 1, load_dataset=empty_cache)
    message = str(info.value)
    assert "'cnn_dailymail (3.0.0)'" in message
    assert "HF_HUB_OFFLINE" in message and "--set corpus=bundled" in message
    assert "\n" not in message and info.value.__cause__ is None


def test_a_missing_local_folder_names_it(tmp_path):
    with pytest.raises(
        UsageError, match=r"corpus_dir: no folder .*cnn_dailymail.*--set corpus=bundled"
    ):
        local({"summarization": ["cnn_dailymail"]}, data_dir=tmp_path)


def test_a_missing_column_names_it_and_the_columns_there_are(tmp_path):
    (tmp_path / "cnn_dailymail").mkdir()
    (tmp_path / "cnn_dailymail" / "train.jsonl").write_text('{"story": "x", "id": "1"}\n')
    with pytest.raises(UsageError, match=r"no column 'article' \(columns: id, story\)"):
        local({"summarization": ["cnn_dailymail"]}, data_dir=tmp_path)


def test_too_few_documents_for_a_user_is_a_usage_error():
    with pytest.raises(UsageError, match=r"'imdb' has 4 reviews over 150 words, 5 needed"):
        local({"summarization": ["imdb"]}, per_user=5)


def test_unknown_source_and_bad_count():
    with pytest.raises(UsageError, match="no Hugging Face dataset for source 'reddit'"):
        local({"summarization": ["reddit"]})
    with pytest.raises(UsageError, match="at least 1"):
        local({"summarization": ["imdb"]}, per_user=0)


def test_without_the_datasets_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(UsageError) as caught:
        load_hf_corpus({"summarization": ["imdb"]}, [1], 1)
    message = str(caught.value)
    assert f"needs the hf extra: {install_command('hf')}" in message
    assert "--set corpus=bundled" in message


# --- through a scenario --------------------------------------------------------------------


def test_a_scenarios_corpus_dir_is_read_relative_to_it_and_gives_each_seed_its_documents(
    tmp_path,
):
    from prose_sim.scenario import load_run

    folder = tmp_path / "scenarios"
    folder.mkdir()
    relative = os.path.relpath(FIXTURES, folder)
    path = folder / "s.toml"
    path.write_text(
        f'name = "t"\nseeds = [1235, 9328]\ndemonstrations_per_user = 2\n'
        f'corpus = "huggingface"\ncorpus_dir = "{relative}"\n'
        '[tasks.summarization]\npersonas = ["imdb"]\n[methods.no_learning]\n',
        encoding="utf-8",
    )
    run = load_run(path)
    assert run.scenario.corpus_dir == str(FIXTURES)
    for seed in (1235, 9328):
        drawn = run.corpus.draw("imdb", 2, seed, "u", task="summarization")
        assert [d.id for d in drawn] == released_draw("summarization", seed, 2)["imdb"]
