"""The run viewer's data and page (the browser test is test_view_browser.py)."""

from __future__ import annotations

import base64
import gzip
import json
import re

import pytest

from prose_sim.cli import main
from prose_sim.view.build import DOC_CLOSE, DOC_OPEN, read_view_data
from prose_sim.view.diff import sides, word_diff
from prose_sim.view.render import render_view

SCENARIO = """
name = "viewed"
seeds = [1235, 9328]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["imdb", "ml_arxiv"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[metrics]
bertscore = ""
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("view")
    (tmp / "s.toml").write_text(SCENARIO, encoding="utf-8")
    assert main(["run", str(tmp / "s.toml"), "--out", str(tmp / "run"), "--progress", "off"]) == 0
    return tmp / "run"


def _episodes(data) -> dict:
    out = {}
    for chunk in data.chunks:
        out.update(json.loads(gzip.decompress(base64.b64decode(chunk))))
    return out


def test_the_word_diff_gives_both_texts_back_and_marks_what_changed():
    draft, user = "The cat sat on the mat, happily.", "The dog sat on a mat happily!"
    segments = word_diff(draft, user)
    assert sides(segments) == (draft, user)
    assert (-1, "cat ") in segments and (1, "dog ") in segments
    assert (0, "sat on ") in segments


def test_every_episode_is_indexed_and_packed(run_dir):
    data = read_view_data(run_dir)
    assert len(data.rows) == 8  # 2 users x 2 methods x 2 seeds
    episodes = _episodes(data)
    assert set(episodes) == {r.id for r in data.rows}
    assert all(0 <= r.chunk < len(data.chunks) for r in data.rows)


def test_an_instance_has_its_diff_preferences_verdicts_metrics_and_calls(run_dir):
    data = read_view_data(run_dir)
    episode = _episodes(data)["summarization/plume/prose/1235/imdb"]
    first, second = episode["instances"]
    assert first["diff"] and first["has_user_text"]
    assert len(first["true"]) == 4 and {v["metric"] for v in first["verdicts"]} >= {"ppcm", "fpm"}
    assert "levenshtein_norm" in first["metrics"]
    purposes = [c["purpose"] for c in first["calls"]]
    assert purposes[:2] == ["draft", "demonstrate"] and "validate" in purposes
    assert all(c["answer"] is not None and c["id"] for c in first["calls"])
    # the PROSE validation scores of every component, kept or dropped
    assert first["validation"] and first["threshold"] is not None
    kept = set(first["components"])
    assert kept <= set(first["validation"])
    assert second["used"] or not kept  # the second draft uses what the first kept


def test_an_instance_several_methods_ran_is_one_group_of_the_side_by_side_view(run_dir):
    data = read_view_data(run_dir)
    episodes = _episodes(data)
    # 2 seeds x 2 users x 2 documents, each run by both methods
    assert len(data.compare) == 8
    for group in data.compare:
        rows = [data.rows[m.row] for m in group.members]
        assert [r.method for r in rows] == ["no_learning", "prose"]
        for member, row in zip(group.members, rows, strict=True):
            assert row.id in json.loads(gzip.decompress(base64.b64decode(data.chunks[row.chunk])))
            (inst,) = [i for i in episodes[row.id]["instances"] if i["instance"] == member.instance]
            assert (inst["user"], inst["document_id"]) == (group.user, group.document_id)
            assert (row.seed, row.task, row.framework) == (group.seed, group.task, group.framework)
    html = render_view(run_dir)
    assert '"compare":[["summarization","plume",1235,' in html  # in the page's index
    assert "function openCompare" in html and 'hash.startsWith("c=")' in html


def test_prompts_refer_to_the_documents_stored_once(run_dir):
    data = read_view_data(run_dir)
    episode = _episodes(data)["summarization/plume/no_learning/1235/imdb"]
    draft_call = episode["instances"][0]["calls"][0]
    prompt = draft_call["messages"][-1][1]
    ref = re.search(f"{DOC_OPEN}(\\d+){DOC_CLOSE}", prompt)
    assert ref is not None
    assert data.documents[int(ref.group(1))] == data.documents[episode["instances"][0]["document"]]


def test_the_page_is_self_contained(run_dir):
    html = render_view(run_dir)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and not re.search(r"<script[^>]+src=", html)
    assert "data:image/png;base64," in html  # the plots, inlined
    assert "smoke test: user, writer, agent, judge on the scripted test double" in html


def test_view_writes_the_file_and_refuses_a_folder_without_a_run(run_dir, tmp_path, capsys):
    out = tmp_path / "v.html"
    assert main(["view", str(run_dir), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run folder" in err[0]


FAULTY = """
name = "faulty"
seeds = [1235]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["imdb", "ml_arxiv"]
[methods.prose]
variant = "1sc"
[metrics]
bertscore = ""
[retry]
attempts = 1
backoff_s = 0.0
[models.agent.faults]
failure_rate = 0.2
malformed_rate = 0.4
seed = 3
"""


def test_failed_calls_and_unparseable_answers_are_marked(tmp_path):
    (tmp_path / "s.toml").write_text(FAULTY, encoding="utf-8")
    main(
        [
            "run",
            str(tmp_path / "s.toml"),
            "--out",
            str(tmp_path / "run"),
            "--progress",
            "off",
            "--no-report",
        ]
    )
    data = read_view_data(tmp_path / "run")
    calls = [c for e in _episodes(data).values() for i in e["instances"] for c in i["calls"]]
    failed = [c for c in calls if c["error"]]
    assert failed and all(c["answer"] is None for c in failed)
    # a failed validation call cancels its sweep's siblings: those have neither answer nor error
    assert all(c["error"] or c["answer"] is not None or c["purpose"] == "validate" for c in calls)
    assert any(c["parse_failed"] for c in calls)
    assert sum(r.parse_failures for r in data.rows) >= sum(c["parse_failed"] for c in calls)
    # a run without report files (--no-report): the page makes the tables, the folder is left alone
    html = render_view(tmp_path / "run")
    assert "<table" in html and "Unparseable model answers" in html
    assert not (tmp_path / "run" / "report.md").exists()


def test_view_open_hands_the_file_to_the_browser(run_dir, tmp_path, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url))
    out = tmp_path / "v.html"
    assert main(["view", str(run_dir), "--out", str(out), "--open"]) == 0
    assert opened == [out.resolve().as_uri()]
