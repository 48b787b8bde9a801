"""scenarios/paper.toml takes the released code's side of every metric knob (docs/fidelity.md, Metrics)."""

from __future__ import annotations

from conftest import SCENARIOS

from prose_sim.metrics.bertscore import PAPER_MODEL, default_layers
from prose_sim.scenario import load_scenario
from prose_sim.world.corpus import bundled_corpus

# the bundled documents stand in for the paper's datasets, which the suite cannot reach
PAPER = load_scenario(SCENARIOS / "paper.toml", corpus=bundled_corpus())


def test_bertscore_is_deberta_xlarge_not_the_mnli_model():
    assert PAPER.metrics.bertscore == PAPER_MODEL == "microsoft/deberta-xlarge"


def test_bertscore_uses_bert_scores_layer_and_baseline_rescaling():
    assert PAPER.metrics.bertscore_layers is None and default_layers(PAPER_MODEL) == 18
    assert PAPER.metrics.bertscore_rescale is True and PAPER.metrics.bertscore_baseline == ""


def test_preference_accuracy_ties_go_to_the_first_user():
    assert PAPER.metrics.preference_accuracy_ties == "first"


def test_the_judge_metrics_are_on():
    assert PAPER.metrics.judge is True


def test_the_metric_study_scores_as_the_paper_does():
    study = load_scenario(SCENARIOS / "metric_study.toml", corpus=bundled_corpus())
    assert study.metrics == PAPER.metrics
    assert all(
        t.frameworks == ["plume", "prelude", "prelude.no_edit"] for t in study.tasks.values()
    )
    assert {study.method_of(label) for label in study.methods} == {"fixed_subset"}


def test_the_judges_verdicts_are_read_as_released():
    assert PAPER.metrics.judge_parsing == "released"
