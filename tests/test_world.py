"""World data: the persona catalog, the bundled corpus, deterministic draws."""

from __future__ import annotations

import itertools

import pytest

from prose_sim.errors import UsageError
from prose_sim.world.corpus import SOURCES, bundled_corpus
from prose_sim.world.personas import builtin_catalog


def test_catalog_has_the_papers_nine_plume_and_nine_prelude_users():
    catalog = builtin_catalog()
    for framework in ("plume", "prelude"):
        assert len(catalog.names(framework, "summarization")) == 5
        assert len(catalog.names(framework, "email_writing")) == 4
    assert all(len(p.components) == 4 for p in catalog if p.framework == "plume")
    assert catalog.get("plume", "summarization", "cnn_dailymail").preferences.startswith(
        "adopt a step-by-step structure; include a simile"
    )


def test_every_persona_source_has_documents():
    corpus = bundled_corpus()
    for persona in builtin_catalog():
        assert corpus.count(persona.source) >= 10, persona.source


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_each_source_has_ten_documents_in_its_word_range(source):
    info = SOURCES[source]
    docs = bundled_corpus().documents(source)
    assert len(docs) >= 10
    for doc in docs:
        assert doc.source == source
        assert info.min_words <= doc.words <= info.max_words, (doc.id, doc.words)
    assert len({d.id for d in docs}) == len(docs)


def test_no_two_documents_share_a_paragraph():
    seen: dict[str, str] = {}
    for source in bundled_corpus().sources():
        for doc in bundled_corpus().documents(source):
            for paragraph in doc.text.split("\n\n"):
                key = " ".join(paragraph.split()).lower()
                if len(key.split()) < 4:  # headings and labels may repeat
                    continue
                assert key not in seen, f"{doc.id} repeats a paragraph of {seen[key]}"
                seen[key] = doc.id


def test_draw_is_deterministic_per_seed_and_user_and_without_replacement():
    corpus = bundled_corpus()
    a = corpus.draw("imdb", 5, 1235, "plume/summarization/imdb")
    assert a == corpus.draw("imdb", 5, 1235, "plume/summarization/imdb")
    assert len({d.id for d in a}) == 5
    others = [
        corpus.draw("imdb", 5, seed, "plume/summarization/imdb") for seed in (9328, 235, 6936, 2045)
    ]
    assert all([d.id for d in o] != [d.id for d in a] for o in others)


def test_draw_more_than_available_is_a_clear_error():
    with pytest.raises(UsageError, match="has 12 documents, 13 requested"):
        bundled_corpus().draw("imdb", 13, 1, "u")


def test_different_users_of_one_source_draw_independently():
    corpus = bundled_corpus()
    draws = {
        k: [d.id for d in corpus.draw("slf5k", 5, 1235, k)]
        for k in ("plume/summarization/slf5k", "plume/email_writing/slf5k")
    }
    a, b = draws.values()
    assert a != b


def test_sources_are_named_consistently():
    for a, b in itertools.combinations(SOURCES, 2):
        assert a != b


def test_assembly_resolves_the_scenario_and_holds_its_whole_world(write_scenario):
    from conftest import MINIMAL

    from prose_sim.scenario import load_run

    run = load_run(write_scenario(MINIMAL))
    assert run.populations == {("plume", "summarization"): ["cnn_dailymail", "imdb"]}
    assert run.scenario.models.writer == run.scenario.models.user  # defaults resolved
    assert run.catalog.get("plume", "summarization", "imdb").source == "imdb"
    assert run.corpus.count("imdb") == bundled_corpus().count("imdb")


def test_a_persona_file_edited_is_read_afresh_by_the_next_assembly(tmp_path):
    from prose_sim.world.personas import catalog_with

    path = tmp_path / "people.toml"
    entry = (
        '[[persona]]\nframework = "plume"\ntask = "email_writing"\nname = "p"\nsource = "ccby"\n'
    )
    path.write_text(entry + 'components = ["use emojis"]\n', encoding="utf-8")
    assert catalog_with((str(path),)).get("plume", "email_writing", "p").components == [
        "use emojis"
    ]
    path.write_text(entry + 'components = ["be brief"]\n', encoding="utf-8")
    assert catalog_with((str(path),)).get("plume", "email_writing", "p").components == ["be brief"]


def _imported_after(statement: str) -> list[str]:
    import subprocess
    import sys

    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_corpus_does_not_import_the_huggingface_loader():
    modules = _imported_after("import prose_sim.world.corpus")
    assert "prose_sim.world.hf_datasets" not in modules


def test_the_runtime_imports_nothing_from_report():
    modules = _imported_after("import prose_sim.runtime, prose_sim.runtime.runner")
    assert "prose_sim.runtime.runner" in modules
    assert [m for m in modules if m.startswith("prose_sim.report")] == []
