"""Honest outputs (issue 16): a smoke test says it is one, and no table shows what it has not measured."""

from __future__ import annotations

import json

import pytest

from prose_sim.cli import main
from prose_sim.report.tables import NO_PARSED
from prose_sim.results.notice import run_dir_notice, table_notice

SMALL = """
name = "small"
seeds = [1]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.oracle]
[metrics]
bertscore = ""
"""
UNPARSED_JUDGE = SMALL + "[models.judge.faults]\nmalformed_rate = 1.0\n"


@pytest.fixture
def captured_figures(monkeypatch):
    """The titles of every figure saved: (file name, suptitle, [panel titles], [panel y tick labels])."""
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
        panels = [ax.get_title() for ax in fig.axes]
        ticks = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes]
        seen.append((path.name, suptitle, panels, ticks))
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return seen


def test_a_scripted_run_says_smoke_test_everywhere(
    write_scenario, tmp_path, capsys, captured_figures
):
    out = tmp_path / "run"
    assert main(["run", str(write_scenario(SMALL)), "--out", str(out), "--progress", "off"]) == 0
    notice = (
        "smoke test: user, writer, agent, judge on the scripted test double; not research results"
    )
    assert (
        notice in capsys.readouterr().out.splitlines()
    )  # a line of its own in the console summary
    assert json.loads((out / "summary.json").read_text())["notice"] == notice
    assert f"> **{notice}**" in (out / "report.md").read_text()
    assert {name for name, *_ in captured_figures} == {
        "ppcm_by_method.png",
        "ppcm_learning_curve.png",
        "cost_vs_ppcm.png",
    }
    assert all(suptitle == notice for _, suptitle, _, _ in captured_figures)
    # one seed: every panel says there are no error bars
    assert all(
        "one seed, no error bars" in t for _, _, panels, _ in captured_figures for t in panels
    )


def test_the_notice_names_the_roles_on_the_scripted_or_embedded_model():
    real = {"backend": "openai", "model": "gpt-4o"}
    assert table_notice({"user": real, "agent": real, "judge": real}) == ""
    assert table_notice(
        {
            "user": real,
            "agent": {"backend": "local", "model": ""},
            "judge": {"backend": "local", "model": "smollm2-135m-instruct"},
        }
    ) == ("smoke test: agent, judge on the embedded SmolLM2-135M; not research results")
    assert table_notice(
        {
            "user": {"backend": "scripted"},
            "agent": {"backend": "local", "model": "Qwen/Qwen2.5-7B-Instruct"},
            "judge": real,
        }
    ) == ("smoke test: user, writer on the scripted test double; not research results")


def test_a_role_left_out_of_the_models_table_is_the_schemas_default_the_scripted_double():
    real = {"backend": "openai", "model": "gpt-4o"}
    assert table_notice({"user": real, "agent": real}) == (
        "smoke test: judge on the scripted test double; not research results"
    )
    assert table_notice(None) == (
        "smoke test: user, writer, agent, judge on the scripted test double; not research results"
    )


def test_the_notice_names_constrained_roles_but_never_the_writer():
    spec = {"backend": "scripted", "constrained": True}
    assert table_notice({"user": spec, "writer": spec, "agent": spec, "judge": spec}) == (
        "smoke test: user, writer, agent, judge on the scripted test double; "
        "user, agent, judge answers constrained to their format; not research results"
    )


def test_a_run_folder_without_a_readable_scenario_has_no_notice(tmp_path):
    assert run_dir_notice(tmp_path) == ""
    (tmp_path / "scenario.toml").write_text(
        '[models.user]\nbackend = "openai"\n[models.agent]\nbackend = "openai"\n'
        '[models.judge]\nbackend = "openai"\n'
    )
    assert run_dir_notice(tmp_path) == ""


def test_parse_failures_are_failed_of_total_and_agreement_without_parsed_verdicts_is_na(
    write_scenario, tmp_path, capsys
):
    out = tmp_path / "run"
    assert (
        main(["run", str(write_scenario(UNPARSED_JUDGE)), "--out", str(out), "--progress", "off"])
        == 0
    )
    console = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    ppcm = next(u for u in summary["usage"] if u["purpose"] == "judge_ppcm")
    assert ppcm["parse_failures"] == ppcm["calls"] > 0
    assert f"judge/judge_ppcm {ppcm['calls']}/{ppcm['calls']}" in console
    report = (out / "report.md").read_text()
    assert f"| judge | judge_ppcm | {ppcm['calls']}/{ppcm['calls']} |" in report
    agreement = [
        line
        for line in report.splitlines()
        if line.startswith("| summarization |") and NO_PARSED in line
    ]
    assert agreement and all("| 0/" in line for line in agreement)
    assert "1.000" not in "\n".join(
        agreement
    )  # (every unparsed verdict "agreed" with a failed check before)


def test_an_axis_of_identical_values_shows_that_value_only(
    write_scenario, tmp_path, captured_figures
):
    out = tmp_path / "run"
    assert (
        main(["run", str(write_scenario(UNPARSED_JUDGE)), "--out", str(out), "--progress", "off"])
        == 0
    )
    [(_, _, _, ticks)] = [f for f in captured_figures if f[0] == "cost_vs_ppcm.png"]
    assert ticks == [["0"]]  # every PPCM is 0 (no verdict parsed): no ticks like 0.04 around it
