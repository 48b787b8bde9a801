"""The metric-validity study: fixed_subset, the powerset plan, prelude.no_edit, correlations."""

from __future__ import annotations

import csv
import io
import math

import anyio
import msgspec
import pytest
from conftest import SCENARIOS
from harness import FakeModel, by_purpose, context, step

from prose_sim.actors.inferrers.fixed_subset import FixedSubset, powerset
from prose_sim.cli import main
from prose_sim.config import RunOptions
from prose_sim.config.methods import FixedSubsetSettings
from prose_sim.report import metric_study
from prose_sim.runtime.plan import expand
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.runner import execute
from prose_sim.scenario import load_scenario
from prose_sim.world.corpus import bundled_corpus
from prose_sim.world.personas import builtin_catalog

CATALOG = builtin_catalog()
SMALL = [
    "--set",
    "models.user.backend=scripted",
    "--set",
    "models.agent.backend=scripted",
    "--set",
    "models.judge.backend=scripted",
    "--set",
    "metrics.bertscore=all-MiniLM-L6-v2",
    "--set",
    "metrics.bertscore_rescale=false",
    "--set",
    "seeds=[1235]",
    "--set",
    "corpus=bundled",
    "--set",
    'tasks.summarization.personas=["wikipedia"]',
    "--set",
    'tasks.email_writing.personas=["ampere"]',
]


def overrides(args: list[str]) -> list[str]:
    return [a for a in args if a != "--set"]


def test_powerset_holds_every_subset_and_the_empty_set():
    assert powerset(2) == [(), (0,), (1,), (0, 1)]
    assert len(powerset(4)) == 16


@pytest.mark.anyio
async def test_fixed_subset_drafts_with_the_given_components_and_learns_nothing():
    persona = CATALOG.get("plume", "summarization", "cnn_dailymail")
    model = FakeModel(by_purpose())
    ctx, _ = context(model)
    inferrer = FixedSubset(ctx, FixedSubsetSettings(method="fixed_subset", subset=[2, 0]))
    retrieved, learned = await step(inferrer, 0, "draft", "user text")
    assert retrieved.preferences == f"{persona.components[0]}; {persona.components[2]}"
    assert learned.preferences == retrieved.preferences and model.requests == []


def test_the_plan_runs_every_subset_of_every_users_components_in_each_framework():
    scenario = load_scenario(SCENARIOS / "metric_study.toml", overrides(SMALL))
    plans = expand(scenario)
    wiki = {
        f: len(CATALOG.get(f, "summarization", "wikipedia").components)
        for f in ("plume", "prelude")
    }
    summaries = [p for p in plans if p.task == "summarization"]
    assert len(summaries) == 2 ** wiki["plume"] + 2 * 2 ** wiki["prelude"]
    assert {p.framework for p in summaries} == {"plume", "prelude", "prelude.no_edit"}
    labels = {p.method_label for p in summaries if p.framework == "plume"}
    assert "fixed_subset[]" in labels and "fixed_subset[0+1+2+3]" in labels
    assert all(p.settings.subset is not None and p.settings.subset != "powerset" for p in plans)


def test_a_subset_knob_on_another_method_is_an_error(write_scenario):
    from prose_sim.errors import UsageError

    path = write_scenario('name = "t"\n[tasks.summarization]\n[methods.oracle]\nsubset = [0]\n')
    with pytest.raises(UsageError, match=r"methods\.oracle\.subset"):
        load_scenario(path)


def test_prelude_without_edits_has_prelude_users_who_write_their_own_text(tmp_path):
    scenario = load_scenario(
        SCENARIOS / "metric_study.toml",
        [
            *overrides(SMALL),
            'tasks.summarization.framework=["prelude.no_edit"]',
            'tasks.email_writing.framework=["prelude"]',
        ],
    )
    anyio.run(lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off"))))
    from prose_sim.eventlog import read_events
    from prose_sim.events import EpisodeStarted, ModelRequested

    episodes = {
        e.episode_id: e
        for e in read_events(tmp_path / "run" / "events.jsonl")
        if isinstance(e, EpisodeStarted)
    }
    purposes: dict[str, set[str]] = {}
    for e in read_events(tmp_path / "run" / "events.jsonl"):
        if isinstance(e, ModelRequested) and e.role == "user":
            purposes.setdefault(episodes[e.episode_id].framework, set()).add(e.purpose)
    assert (
        "edit" not in purposes["prelude.no_edit"] and "demonstrate" in purposes["prelude.no_edit"]
    )
    assert "demonstrate" not in purposes["prelude"]


def test_correlations_are_scipys_per_task_and_framework():
    rows = [
        {
            "task": "t",
            "framework": "plume",
            "method": f"fixed_subset[{i}]",
            "status": "ok",
            "seed": 1,
            "true_components_share": s,
            "ppcm": p,
            "fpm": 0.0,
            "levenshtein_norm": 1 - s,
            "bertscore": s * s,
        }
        for i, (s, p) in enumerate([(0.0, -1.0), (0.5, 0.5), (1.0, 2.0), (0.25, 0.0)])
    ]
    rows.append({**rows[0], "method": "oracle"})  # not a study row
    found = {(c.preference_measure, c.writing_metric): c for c in metric_study.correlations(rows)}
    from scipy import stats

    c = found[("true_components_share", "ppcm")]
    xs, ys = [0.0, 0.5, 1.0, 0.25], [-1.0, 0.5, 2.0, 0.0]
    assert c.n == 4 and c.pearson == pytest.approx(stats.pearsonr(xs, ys).statistic)
    assert c.spearman == pytest.approx(1.0) and c.kendall == pytest.approx(1.0)
    assert found[("true_components_share", "levenshtein_norm")].pearson == pytest.approx(-1.0)
    assert math.isnan(found[("true_components_share", "fpm")].pearson)  # FPM constant
    assert math.isnan(found[("preference_accuracy", "ppcm")].pearson)  # no values


def test_the_scripted_study_writes_the_correlation_tables_and_the_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(SCENARIOS / "metric_study.toml"),
            "--out",
            str(out),
            "--progress",
            "off",
            *SMALL,
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "## Metric validity (PLUME vs PRELUDE)" in report
    for panel in (
        "summarization (plume)",
        "summarization (prelude)",
        "summarization (prelude.no_edit)",
    ):
        assert f"### {panel}" in report
    assert "MiniLM BERTScore, not comparable with the paper's" in report
    rows = list(csv.DictReader(io.StringIO((out / "correlations.csv").read_text())))
    assert {r["framework"] for r in rows} == {"plume", "prelude", "prelude.no_edit"}
    assert len(rows) == 2 * 3 * len(metric_study.PREFERENCE_MEASURES) * len(
        metric_study.WRITING_METRICS
    )
    assert (out / metric_study.PLOT).stat().st_size > 0


def test_study_results_do_not_depend_on_concurrency(tmp_path):
    scenario = load_scenario(
        SCENARIOS / "metric_study.toml",
        [*overrides(SMALL), 'tasks.email_writing.personas=["paper_tweet"]'],
    )
    for n in (1, 64):
        anyio.run(
            lambda n=n: execute(
                prepare(scenario, tmp_path / f"c{n}", RunOptions(progress="off", concurrency=n))
            )
        )
    first = (tmp_path / "c1" / "results.csv").read_bytes()
    assert first == (tmp_path / "c64" / "results.csv").read_bytes()
    assert b"bertscore" in first.splitlines()[0]


@pytest.mark.real_bertscore
def test_the_papers_bertscore_model_that_cannot_be_loaded_stops_the_run_at_start(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub here, and no local copy of the model
    args = [x for key in overrides(SMALL) if "bertscore" not in key for x in ("--set", key)]
    code = main(
        [
            "run",
            str(SCENARIOS / "metric_study.toml"),
            "--out",
            str(tmp_path / "run"),
            "--progress",
            "off",
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "microsoft/deberta-xlarge" in err and "metrics.bertscore=all-MiniLM-L6-v2" in err
    assert not (tmp_path / "run").exists()


# --- the study as scripts/run_all_experiments.py runs it (run_compare_frameworks_metric_correlations)


def test_the_study_runs_as_run_compare_frameworks_metric_correlations_configures_it():
    study = load_scenario(SCENARIOS / "metric_study.toml", corpus=bundled_corpus())
    paper = load_scenario(SCENARIOS / "paper.toml", corpus=bundled_corpus())
    assert study.corpus == paper.corpus == "huggingface"  # the paper's documents
    assert study.demonstrations_per_user == 1  # number_of_examples_per_preference_set = 1
    assert study.seeds == paper.seeds == [1235, 9328, 235, 6936, 2045]
    for role in ("user", "writer", "judge"):
        spec = study.models.of(role)
        # OpenAIGPT.prompt_llm: gpt_temperature 0.01, max_tokens 4000
        assert (spec.model, spec.temperature, spec.max_new_tokens) == ("gpt-4o", 0.01, 4000)
    assert study.metrics.judge_parsing == "released"


def test_every_released_preference_metric_meets_every_released_writing_metric():
    """compare_frameworks.compare_prelude_and_plume correlates each metric whose name holds
    "preference" with each whose name holds "writing" (summarization.get_metrics' keys)."""
    released_preference = ["acc", "f1", "pre", "rec", "string_length", "llm_judge_similarity"]
    released_writing = ["ldist", "n_ldist", "BS", "ppm", "fpm", "avm"]
    ours_preference = [m for m, _ in metric_study.PREFERENCE_MEASURES]
    ours_writing = [m for m, _ in metric_study.WRITING_METRICS]
    assert len(ours_preference) == len(released_preference) + 1  # + the share of components
    assert ours_preference[-1] == "true_components_share"
    assert ours_writing == [
        "levenshtein",
        "levenshtein_norm",
        "bertscore",
        "ppcm",
        "fpm",
        "ppcm_fpm_mean",
    ]
    assert len(ours_writing) == len(released_writing)


def test_correlations_are_per_seed_as_each_released_run_and_the_report_averages_them():
    def row(seed: int, i: int, share: float, ppcm: float) -> dict:
        return {
            "task": "t",
            "framework": "plume",
            "method": f"fixed_subset[{i}]",
            "status": "ok",
            "seed": seed,
            "true_components_share": share,
            "ppcm": ppcm,
        }

    rows = [row(1, i, s, p) for i, (s, p) in enumerate([(0.0, 0.0), (0.5, 1.0), (1.0, 2.0)])]
    rows += [row(2, i, s, p) for i, (s, p) in enumerate([(0.0, 2.0), (0.5, 0.0), (1.0, 1.0)])]
    found = [
        c
        for c in metric_study.correlations(rows)
        if (c.preference_measure, c.writing_metric) == ("true_components_share", "ppcm")
    ]
    from scipy import stats

    by_seed = {c.seed: c.pearson for c in found}
    assert by_seed[1] == pytest.approx(1.0)
    assert by_seed[2] == pytest.approx(stats.pearsonr([0, 0.5, 1], [2, 0, 1]).statistic)
    text = metric_study.markdown(found)
    assert "### t (plume), 2 seeds, 6 instances" in text
    assert f"{(by_seed[1] + by_seed[2]) / 2:.3f} / " in text


def test_the_scripted_study_has_a_value_for_every_pair(tmp_path):
    scenario = load_scenario(SCENARIOS / "metric_study.toml", overrides(SMALL))
    scenario = msgspec.structs.replace(
        scenario, tasks={"summarization": scenario.tasks["summarization"]}
    )
    anyio.run(lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off"))))
    from prose_sim.report.build import Report

    found = metric_study.correlations(Report([tmp_path / "run"]).rows)
    assert {c.n for c in found} == {
        2 ** len(CATALOG.get("plume", "summarization", "wikipedia").components)
    } | {2 ** len(CATALOG.get("prelude", "summarization", "wikipedia").components)}
