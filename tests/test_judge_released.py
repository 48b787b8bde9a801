"""The judge as released (tasks/writing/writing_quality_assesor.py of the reference).

One test per rule: the released parser (``judge_parsing = "released"``) scores each answer as
``score_adherence_to_preference_component``, ``score_adherence_to_compound_preference`` and
``score_preference_similarity`` score it; the prompts show what the released ones show and
nothing more, with the released system messages and option labels.
"""

from __future__ import annotations

import pytest
from conftest import MINIMAL, SCENARIOS
from harness import BASE, FakeModel, by_purpose, context, demo, draft, drain, instance

from prose_sim.actors.judge import SCALES, Judge
from prose_sim.cli import main
from prose_sim.config.metrics import MetricsSettings
from prose_sim.errors import UsageError
from prose_sim.events import JudgeVerdict, MetricsComputed, PreferencesRetrieved
from prose_sim.models.answers import Choice
from prose_sim.parsing import parse_verdict, parse_verdict_released
from prose_sim.report.build import Report
from prose_sim.scales import FPM_RELEASED_KEYS, FPM_SCALE, PPCM_SCALE, SIMILARITY_SCALE
from prose_sim.scenario import load_scenario
from prose_sim.world.corpus import bundled_corpus
from prose_sim.world.personas import builtin_catalog
from prose_sim.world.tasks import TASKS

CNN = builtin_catalog().get("plume", "summarization", "cnn_dailymail")
AMPERE = builtin_catalog().get("plume", "email_writing", "ampere")
POPULATION = builtin_catalog().for_task("plume", "summarization")

PPCM_OPTIONS = (
    "clearly exhibits, somewhat exhibits, neither exhibits nor contradicts, "
    "somewhat contradicts, clearly contradicts"
)
FPM_OPTIONS = (
    "exhibits all preferences, exhibits most preferences, exhibits some preferences, "
    "exhibits few preferences, exhibits none of the preferences"
)
SIMILARITY_OPTIONS = (
    "extremely similar, very similar, moderately similar, slightly similar, not at all similar"
)
VERDICT_LINE = 'Put your final choice on a new line that starts with "Verdict:"'
EDITOR = "You are an experienced editor who assesses samples of writing."
SIMILARITY_EDITOR = (
    "You are an experienced editor who assesses how similar sets of writing preferences are."
)


def ppcm(text: str) -> int | None:
    return parse_verdict_released(text, PPCM_SCALE)


# --- the released parser, rule by rule ------------------------------------------------------


def test_a_verdict_line_in_quotes_scores_as_score_adherence_to_preference_component():
    assert ppcm('The text uses similes.\n"Verdict: clearly exhibits"') == 2
    assert ppcm('Reasoning.\nVerdict: "somewhat exhibits"') == 1


def test_a_bold_verdict_line_scores_as_score_adherence_to_preference_component():
    assert ppcm("Reasoning.\n**Verdict:** somewhat contradicts") == -1
    assert ppcm("Reasoning.\n**Verdict: Clearly Contradicts**") == -2


def test_a_verdict_heading_is_no_verdict_line_in_score_adherence_to_preference_component():
    # "#" is not stripped there, so the line does not start with "verdict:": 0, unparsed
    assert ppcm("Reasoning.\n### Verdict: clearly exhibits") is None
    assert ppcm("Reasoning.\n- Verdict: clearly exhibits") is None


def test_the_first_verdict_line_wins_in_score_adherence_to_preference_component():
    assert ppcm("Verdict: somewhat exhibits\nOn reflection...\nVerdict: clearly contradicts") == 1


def test_a_keyword_only_in_the_reasoning_scores_nothing_in_score_adherence_to_preference_component():
    assert ppcm("It clearly exhibits the preference, I would say.") is None
    assert ppcm("It clearly exhibits the preference.\nVerdict: unsure") is None


def test_an_empty_verdict_line_is_passed_over_in_score_adherence_to_preference_component():
    # `if answer != "": break`: a later verdict line with an answer counts; the next line
    # after an empty one is not read
    assert ppcm("Verdict:\nclearly exhibits") is None
    assert ppcm("Verdict:\nclearly exhibits\nVerdict: somewhat exhibits") == 1


def test_an_indented_verdict_line_is_no_verdict_line_in_score_adherence_to_preference_component():
    assert ppcm("Reasoning.\n   Verdict: clearly exhibits") is None
    assert ppcm("   Verdict: clearly exhibits") == 2  # the whole answer is stripped first


def test_the_first_option_in_the_released_order_wins_in_score_adherence_to_preference_component():
    # a substring test in the released order: the best option named wins
    assert ppcm("Verdict: somewhat contradicts, maybe clearly exhibits") == 2
    assert ppcm("Verdict: neither exhibits nor contradicts") == 0


def test_fpm_looks_for_the_labels_without_exhibits_as_score_adherence_to_compound_preference():
    def fpm(text: str) -> int | None:
        return parse_verdict_released(text, FPM_RELEASED_KEYS)

    assert fpm("Verdict: most preferences") == 1
    assert fpm("Verdict: Exhibits None of the Preferences") == -2
    assert fpm("Verdict: exhibits all preferences") == 2
    assert fpm("Verdict: most") is None
    assert [fpm(f"Verdict: {label}") for label in FPM_SCALE] == list(FPM_SCALE.values())


def test_similarity_reads_the_released_labels_as_score_preference_similarity():
    def similarity(text: str) -> int | None:
        return parse_verdict_released(text, SIMILARITY_SCALE)

    assert [similarity(f"Verdict: {label}") for label in SIMILARITY_SCALE] == [4, 3, 2, 1, 0]
    assert similarity("**Verdict:** Very Similar") == 3
    assert similarity("Very similar overall.") is None


# --- the judge with each parser ---------------------------------------------------------------


async def judge_once(settings: MetricsSettings, answers: dict, task: str = "summarization"):
    model = FakeModel(by_purpose(**answers))
    ctx, sink = context(model, task=task)
    persona = CNN if task == "summarization" else AMPERE
    judge = Judge(ctx, settings, None, ())
    await judge.handle(instance(0, persona.name))
    await judge.handle(PreferencesRetrieved(**BASE, instance=0, preferences="use similes"))
    await judge.handle(draft(0, "The JUDGED draft.", "use similes"))
    await judge.handle(demo(0, "the user's own text"))
    events = drain(sink)
    metrics = next(e for e in events if isinstance(e, MetricsComputed)).metrics
    return metrics, events, model


HEADINGS = {
    "judge_ppcm": "Reasoning.\n### Verdict: clearly exhibits",
    "judge_fpm": "Reasoning.\n**Verdict:** exhibits most preferences",
    "judge_similarity": 'Reasoning.\n"Verdict: very similar"\nVerdict: not at all similar',
}


@pytest.mark.anyio
async def test_judge_parsing_released_scores_a_heading_zero_and_counts_it_unparsed():
    settings = MetricsSettings(bertscore="", verifiable=False, judge_parsing="released")
    metrics, events, _ = await judge_once(settings, HEADINGS)
    assert metrics["ppcm"] == 0.0 and metrics["judge_unparsed"] == len(CNN.components)
    assert metrics["fpm"] == 1.0 and metrics["preference_similarity"] == 3.0
    assert all(not v.parsed for v in events if isinstance(v, JudgeVerdict) and v.metric == "ppcm")


@pytest.mark.anyio
async def test_judge_parsing_forgiving_reads_the_heading_and_the_last_verdict_line():
    settings = MetricsSettings(bertscore="", verifiable=False)
    assert settings.judge_parsing == "forgiving"
    metrics, _, _ = await judge_once(settings, HEADINGS)
    assert metrics["ppcm"] == 2.0 and metrics["judge_unparsed"] == 0
    assert metrics["fpm"] == 1.0 and metrics["preference_similarity"] == 0.0


# --- the prompts and system messages -----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("task", ["summarization", "email_writing"])
async def test_every_judge_call_carries_the_released_system_message_as_a_system_message(task):
    _, _, model = await judge_once(MetricsSettings(bertscore="", verifiable=False), {}, task)
    for request in model.requests:
        system, user = request.messages
        assert system["role"] == "system" and user["role"] == "user"
        expected = SIMILARITY_EDITOR if request.purpose == "judge_similarity" else EDITOR
        assert system["content"] == expected


def no_extra_directives(prompt: str, task: str) -> None:
    assert TASKS[task].instruction not in prompt
    for ours in ("judge only", "each in turn", "clearly exhibit this", "quality of the writing"):
        assert ours not in prompt.lower()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("task", "kind"), [("summarization", "summary"), ("email_writing", "email")]
)
async def test_the_ppcm_prompt_shows_what_score_adherence_to_preference_component_shows(task, kind):
    _, _, model = await judge_once(MetricsSettings(bertscore="", verifiable=False), {}, task)
    persona = CNN if task == "summarization" else AMPERE
    prompts = model.prompts("judge_ppcm")
    assert len(prompts) == len(persona.components)
    for component, prompt in zip(persona.components, prompts):
        lines = prompt.splitlines()
        assert len(lines) == 8, prompt
        assert kind in lines[0]
        assert lines[1:4] == ['"""', "The JUDGED draft.", '"""']  # delimited as released
        assert f'"{component}"?' in lines[4] and kind in lines[4]
        assert "excerpts" in lines[5] and "reason" in lines[5]
        assert lines[6] == PPCM_OPTIONS  # the released labels, in the released order
        assert lines[7] == VERDICT_LINE
        no_extra_directives(prompt, task)


@pytest.mark.anyio
async def test_the_fpm_prompt_shows_what_score_adherence_to_compound_preference_shows():
    _, _, model = await judge_once(MetricsSettings(bertscore="", verifiable=False), {})
    [prompt] = model.prompts("judge_fpm")
    lines = prompt.splitlines()
    assert len(lines) == 8, prompt
    assert lines[1:4] == ['"""', "The JUDGED draft.", '"""']
    # the components on one line, joined as in_natural_language(mode="string") joins them
    assert lines[4].endswith(f": {'; '.join(CNN.components)}?")
    assert "excerpts" in lines[5]
    assert lines[6] == FPM_OPTIONS and lines[7] == VERDICT_LINE
    no_extra_directives(prompt, "summarization")


@pytest.mark.anyio
async def test_the_similarity_prompt_shows_what_score_preference_similarity_shows():
    _, _, model = await judge_once(MetricsSettings(bertscore="", verifiable=False), {})
    [prompt] = model.prompts("judge_similarity")
    lines = prompt.splitlines()
    assert len(lines) == 13, prompt
    assert lines[1:5] == ['"""', "Inferred preferences:", "use similes", '"""']
    assert lines[6:10] == ['"""', "True preferences:", CNN.preferences, '"""']
    assert "how the preferences would affect" in lines[10]
    assert lines[11] == SIMILARITY_OPTIONS and lines[12] == VERDICT_LINE
    no_extra_directives(prompt, "summarization")


def test_prompts_show_prints_the_judges_system_messages_and_released_prompts(capsys):
    args = ["prompts", "show", "--method", "prose", "--variant", "1sc", "--demonstrations", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for purpose in ("judge_ppcm", "judge_fpm", "judge_similarity"):
        assert f"[judge/{purpose}]" in out
    assert f"[system] {EDITOR}" in out and f"[system] {SIMILARITY_EDITOR}" in out
    lines = out.splitlines()
    for options in (PPCM_OPTIONS, FPM_OPTIONS, SIMILARITY_OPTIONS):
        assert options in lines
    assert VERDICT_LINE in lines


# --- scenarios and the report ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["paper.toml", "metric_study.toml"])
def test_the_papers_scenarios_read_verdicts_as_released(name):
    scenario = load_scenario(SCENARIOS / name, corpus=bundled_corpus())
    assert scenario.metrics.judge_parsing == "released"


def test_a_constrained_judge_cannot_have_its_verdicts_read_as_released(write_scenario):
    path = write_scenario(
        MINIMAL + '[metrics]\njudge_parsing = "released"\n[models.judge]\nconstrained = true\n'
    )
    with pytest.raises(UsageError, match=r"metrics\.judge_parsing.*constrained"):
        load_scenario(path)


@pytest.mark.parametrize("parsing", ["released", "forgiving"])
def test_the_report_says_which_verdict_parser_was_used(parsing, write_scenario, tmp_path):
    run_dir = tmp_path / "run"
    path = write_scenario(MINIMAL + f'[metrics]\nbertscore = ""\njudge_parsing = "{parsing}"\n')
    args = ["run", str(path), "--out", str(run_dir), "--progress", "off"]
    assert main(args) == 0
    report = Report([run_dir]).markdown()
    assert f"read with judge_parsing = {parsing}:" in report
    assert ("released judge's parser" in report) == (parsing == "released")


@pytest.mark.parametrize("purpose", sorted(SCALES))
def test_a_constrained_answer_with_the_full_labels_parses_under_the_forgiving_parser(purpose):
    # a constrained judge answers with the option alone (local) or as a JSON string (openai)
    labels, released = SCALES[purpose]
    assert Choice.of(labels).keywords == tuple(labels)
    for label, score in labels.items():
        assert parse_verdict(label, {**labels, **released}) == score
        assert parse_verdict(f'"{label}"', {**labels, **released}) == score
