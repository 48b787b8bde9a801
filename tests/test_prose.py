"""PROSE, one test per rule of the algorithm (design brief, section 3)."""

from __future__ import annotations

import pytest
from harness import FakeModel, by_purpose, drain, make, step

from prose_sim.actors.inferrers.prose import IclProse, Prose, model_defaults, resolve_config
from prose_sim.config.methods import ProseSettings
from prose_sim.events import ParseFailed

pytestmark = pytest.mark.anyio

CONFIRM = "Reasoning.\nVerdict: strongly confirms"
LIST = 'Preferences: ["use short sentences", "include a simile"]'


def model(**answers):
    defaults = dict(
        refine="Preferences: use short sentences; include a simile",
        breakdown=LIST,
        validate=CONFIRM,
        candidate="a new candidate",
        coalesce="Preferences: merged preferences",
    )
    defaults.update(answers)
    return FakeModel(by_purpose(**defaults))


async def test_refinement_stops_when_the_candidate_equals_the_users_text():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=3)
    await step(prose, 0, draft_text="the same words", user_text="the  same words")
    assert m.by_purpose("refine") == [] and m.by_purpose("candidate") == []


async def test_refinement_stops_once_a_redrafted_candidate_equals_the_users_text():
    m = model(candidate="the user text")
    prose, _ = make(Prose, m, num_refinement_steps=5, candidate_type="iterate")
    await step(prose, 0, draft_text="a draft", user_text="the user text")
    assert len(m.by_purpose("refine")) == 1 and len(m.by_purpose("candidate")) == 1


async def test_none_puts_no_candidate_in_the_refine_prompt():
    m = model()
    prose, _ = make(Prose, m, candidate_type="none", num_refinement_steps=2)
    await step(prose, 0, draft_text="DRAFTED-TEXT-MARKER", user_text="user words")
    prompts = m.prompts("refine")
    assert len(prompts) == 2 and all("DRAFTED-TEXT-MARKER" not in p for p in prompts)
    assert all("user words" in p for p in prompts)


async def test_single_never_redrafts():
    m = model()
    prose, _ = make(Prose, m, candidate_type="single", num_refinement_steps=3)
    await step(prose, 0, draft_text="DRAFTED-TEXT-MARKER", user_text="user words")
    assert m.by_purpose("candidate") == []
    prompts = m.prompts("refine")
    assert len(prompts) == 3 and all("DRAFTED-TEXT-MARKER" in p for p in prompts)


async def test_iterate_redrafts_on_every_step_but_the_last():
    m = model(candidate=lambda r: f"candidate {len(m.requests)}")
    prose, _ = make(Prose, m, candidate_type="iterate", num_refinement_steps=3)
    await step(prose, 0, draft_text="first draft", user_text="user words")
    assert len(m.by_purpose("refine")) == 3 and len(m.by_purpose("candidate")) == 2
    refine = m.prompts("refine")
    assert "first draft" in refine[0] and "first draft" not in refine[1]


async def test_the_refined_preferences_are_what_the_candidate_is_drafted_with():
    m = model(refine="Preferences: WRITE-IN-ALLCAPS")
    prose, _ = make(Prose, m, candidate_type="iterate", num_refinement_steps=2)
    await step(prose, 0, draft_text="d", user_text="u")
    assert "WRITE-IN-ALLCAPS" in m.prompts("candidate")[0]


async def test_breakdown_is_skipped_when_the_answer_already_is_a_json_list():
    m = model(refine=LIST)
    prose, _ = make(Prose, m, num_refinement_steps=1)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert m.by_purpose("breakdown") == []
    assert learned.components == ["use short sentences", "include a simile"]


async def test_breakdown_asks_the_model_for_a_list_otherwise():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1, do_validate=False)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert len(m.by_purpose("breakdown")) == 1
    assert learned.components == ["use short sentences", "include a simile"]


async def test_breakdown_each_iteration_breaks_down_after_every_refinement():
    m = model()
    prose, _ = make(
        Prose,
        m,
        num_refinement_steps=3,
        breakdown="each_iteration",
        candidate_type="single",
        do_validate=False,
    )
    await step(prose, 0, draft_text="d", user_text="u")
    assert len(m.by_purpose("breakdown")) == 3


async def test_breakdown_never_keeps_the_description_whole():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1, breakdown="never", do_validate=False)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert m.by_purpose("breakdown") == []
    assert learned.components == ["use short sentences; include a simile"]


async def test_an_unparseable_breakdown_keeps_the_preferences_as_they_were_and_is_counted():
    m = model(breakdown="I cannot do that.")
    prose, sink = make(Prose, m, num_refinement_steps=1, do_validate=False)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["use short sentences; include a simile"]
    failures = [e for e in drain(sink) if isinstance(e, ParseFailed)]
    assert [f.purpose for f in failures] == ["breakdown"]


async def test_a_verdict_is_never_asked_twice_for_the_same_component_and_demonstration():
    m = model(validate="Verdict: somewhat confirms")  # mean 1: never stops early
    prose, _ = make(Prose, m, num_refinement_steps=1, num_other_sequences=5)
    for i in range(3):
        await step(prose, i, draft_text=f"d{i}", user_text=f"u{i}")
    asked = m.prompts("validate")
    # the same 2 components each time: only the new demonstration is asked about
    assert len(asked) == 2 * 3 and len(set(asked)) == len(asked)


def fresh_components():
    counter = iter(range(1000))
    return lambda r: f'Preferences: ["component {next(counter)}"]'


async def test_validation_of_a_component_stops_after_two_verdicts_with_mean_magnitude_above_1_5():
    m = model(breakdown=fresh_components(), validate=CONFIRM, coalesce="Preferences: x")
    prose, _ = make(Prose, m, num_refinement_steps=1, num_other_sequences=5)
    for i in range(3):
        await step(prose, i, draft_text=f"d{i}", user_text=f"u{i}")
    # a new component each instance, validated against 1, 2, 3 demonstrations: the
    # third instance stops after two verdicts (mean 2 > 1.5)
    assert len(m.by_purpose("validate")) == 1 + 2 + 2


async def test_validation_goes_on_while_the_mean_magnitude_is_at_most_1_5():
    verdicts = iter(["Verdict: strongly confirms", "Verdict: somewhat confirms"] * 50)
    m = model(
        breakdown=fresh_components(), validate=lambda r: next(verdicts), coalesce="Preferences: x"
    )
    prose, _ = make(Prose, m, num_refinement_steps=1, num_other_sequences=5)
    for i in range(3):
        await step(prose, i, draft_text=f"d{i}", user_text=f"u{i}")
    assert len(m.by_purpose("validate")) == 1 + 2 + 3


@pytest.mark.parametrize("on_earlier, kept", [("neutral", False), ("somewhat confirms", True)])
async def test_a_component_whose_mean_equals_the_threshold_is_dropped(on_earlier, kept):
    """Verdicts (somewhat confirms, neutral) have mean 0.5 = threshold: dropped."""

    def verdict(request):
        prompt = request.messages[-1]["content"]
        return "Verdict: somewhat confirms" if "NEW-TEXT" in prompt else f"Verdict: {on_earlier}"

    m = model(breakdown=fresh_components(), validate=verdict, coalesce="Preferences: x")
    prose, _ = make(Prose, m, num_refinement_steps=1, validation_threshold=0.5)
    await step(prose, 0, draft_text="d0", user_text="EARLIER-TEXT")
    _, learned = await step(prose, 1, draft_text="d1", user_text="NEW-TEXT")
    assert (learned.components == ["component 1"]) is kept


async def test_an_unparseable_verdict_scores_zero():
    m = model(refine='Preferences: ["only one"]', validate="I am not sure.")
    prose, _ = make(Prose, m, num_refinement_steps=1, validation_threshold=-0.5)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["only one"]  # 0 > -0.5
    assert list(prose.verdicts.values()) == [0]


async def test_no_validation_keeps_every_component():
    m = model(validate="Verdict: strongly contradicts")
    prose, _ = make(Prose, m, num_refinement_steps=1, do_validate=False)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert m.by_purpose("validate") == [] and len(learned.components) == 2


async def test_include_preferences_in_validate_shows_the_other_components_not_the_one_checked():
    m = model(validate=CONFIRM)
    prose, _ = make(Prose, m, num_refinement_steps=1, include_preferences_in_validate=True)
    await step(prose, 0, draft_text="d", user_text="u")
    for checked, other in [
        ("use short sentences", "include a simile"),
        ("include a simile", "use short sentences"),
    ]:
        (prompt,) = [p for p in m.prompts("validate") if f'preference: "{checked}"' in p]
        context = prompt.split("other preferences inferred:", 1)[1]
        assert other in context and checked not in context


async def test_without_include_preferences_in_validate_no_other_component_is_shown():
    m = model(validate=CONFIRM)
    prose, _ = make(Prose, m, num_refinement_steps=1)
    await step(prose, 0, draft_text="d", user_text="u")
    assert all("other preferences" not in p for p in m.prompts("validate"))


# --- what PROSE keeps across refinement steps (released prose.py, Prose.learn) ---------


def stepwise_refine():
    counter = iter(range(1000))
    return lambda r: f"Reasoning.\nPreferences: STEP-{next(counter)}"


async def test_the_breakdown_sees_the_starting_preferences_and_every_refinement_steps_output():
    m = model(refine=stepwise_refine(), coalesce="Preferences: COALESCED-START")
    prose, _ = make(Prose, m, num_refinement_steps=3, candidate_type="iterate", do_validate=False)
    await step(prose, 0, draft_text="d0", user_text="u0")  # something to coalesce next time
    m.requests.clear()
    await step(prose, 1, draft_text="d1", user_text="u1")
    (breakdown,) = m.prompts("breakdown")
    assert all(p in breakdown for p in ["COALESCED-START", "STEP-3", "STEP-4", "STEP-5"])


async def test_each_refine_prompt_shows_only_the_latest_steps_preferences():
    m = model(refine=stepwise_refine(), coalesce="Preferences: COALESCED-START")
    prose, _ = make(Prose, m, num_refinement_steps=3, candidate_type="iterate", do_validate=False)
    await step(prose, 0, draft_text="d0", user_text="u0")
    m.requests.clear()
    await step(prose, 1, draft_text="d1", user_text="u1")
    first, second, third = m.prompts("refine")
    assert "COALESCED-START" in first
    assert "STEP-3" in second and "COALESCED-START" not in second
    assert "STEP-4" in third and "STEP-3" not in third


async def test_an_unparseable_refine_step_keeps_the_latest_preferences():
    answers = iter(["Preferences: FIRST", "no answer here", "Preferences: THIRD"])
    m = model(refine=lambda r: next(answers))
    prose, _ = make(Prose, m, num_refinement_steps=3, candidate_type="single", do_validate=False)
    await step(prose, 0, draft_text="d", user_text="u")
    assert "FIRST" in m.prompts("refine")[2]
    assert "FIRST; THIRD" in m.prompts("breakdown")[0]


async def test_candidates_are_written_by_the_writer_role_with_the_task_prompt():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=2, candidate_type="iterate", do_validate=False)
    await step(prose, 0, draft_text="d", user_text="u")
    (candidate,) = m.by_purpose("candidate")
    assert candidate.role == "writer"
    assert (
        candidate.messages[0]["role"] == "system"
        and "triple quotes" in candidate.messages[-1]["content"]
    )


# --- validation as released (prose.py, Prose.learn and validate_preference) -------------


async def test_cached_verdicts_still_count_after_a_components_early_stop():
    def verdict(request):
        text = request.messages[-1]["content"]
        return "Verdict: strongly contradicts" if "TEXT-0" in text else "Verdict: strongly confirms"

    m = model(breakdown='Preferences: ["A"]', validate=verdict)
    prose, _ = make(
        Prose, m, num_refinement_steps=1, validation_threshold=1.0, num_other_sequences=5
    )
    for i in range(3):
        _, learned = await step(prose, i, draft_text=f"d{i}", user_text=f"TEXT-{i}")
    # third instance: TEXT-2 (+2, asked), TEXT-1 (+2, cached): settled, but TEXT-0's cached -2
    # still counts: mean 2/3 <= 1.0, dropped; and no verdict was asked twice
    assert learned.components == []
    assert len(m.by_purpose("validate")) == 3


@pytest.mark.parametrize("answer", ["I am not sure.", "Verdict: somewhat confirms or neutral"])
async def test_an_unparseable_verdict_counts_as_neutral(answer):
    m = model(refine='Preferences: ["only one"]', validate=answer)
    prose, sink = make(Prose, m, num_refinement_steps=1, validation_threshold=-0.5)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["only one"] and list(prose.verdicts.values()) == [0]
    assert [e.purpose for e in drain(sink) if isinstance(e, ParseFailed)] == ["validate"]


async def test_the_validation_prompt_shows_the_users_text_and_the_component_not_the_document_or_task():
    m = model(validate=CONFIRM)
    prose, _ = make(Prose, m, num_refinement_steps=1)
    await step(prose, 0, draft_text="d", user_text="THE-USERS-TEXT", document="THE-DOCUMENT-BODY")
    for prompt in m.prompts("validate"):
        assert "THE-USERS-TEXT" in prompt and "THE-DOCUMENT-BODY" not in prompt
        assert "ummariz" not in prompt and 'starts with "Verdict:"' in prompt


async def test_refine_and_validate_let_the_model_reason_first_no_prefix():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1)
    await step(prose, 0, draft_text="d", user_text="u")
    for purpose in ("refine", "validate"):
        assert all(r.response_prefix == "" for r in m.by_purpose(purpose)), purpose
    refine = m.prompts("refine")[0]
    assert "Reason first" in refine and 'starts with "Preferences:"' in refine
    assert all(r.messages[0]["role"] == "system" for r in m.requests)


async def test_coalescing_happens_only_when_earlier_preferences_exist():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1)
    first, _ = await step(prose, 0, draft_text="d", user_text="u")
    assert m.by_purpose("coalesce") == [] and first.preferences == ""
    second, _ = await step(prose, 1, draft_text="d", user_text="u")
    assert len(m.by_purpose("coalesce")) == 1 and second.preferences == "merged preferences"
    assert "include a simile" in m.prompts("coalesce")[0]


async def test_retrieval_is_per_user_with_exact_match():
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1)
    await step(prose, 0, draft_text="d", user_text="u", persona="imdb")
    got, _ = await step(prose, 1, draft_text="d", user_text="u", persona="cnn_dailymail")
    assert m.by_purpose("coalesce") == [] and got.retrieved == []


async def test_icl_prose_drafts_with_examples_and_preferences():
    m = model()
    prose, _ = make(IclProse, m, num_refinement_steps=1)
    await step(prose, 0, draft_text="d", user_text="FIRST-USER-TEXT", document="FIRST-DOCUMENT")
    got, _ = await step(prose, 1, draft_text="d", user_text="u")
    assert got.examples == [("FIRST-DOCUMENT", "FIRST-USER-TEXT")] and got.preferences


def test_variants_and_model_defaults():
    assert model_defaults("gpt-4o") == (5, 0.5)
    assert model_defaults("gpt-4o-mini-2024-07-18") == (3, 0.5)
    assert model_defaults("Qwen/Qwen2.5-7B-Instruct") == (5, 0.25)
    assert model_defaults("qwen-2_5-72b") == (5, 0.75)
    full = resolve_config(ProseSettings(variant="full"), "gpt-4o")
    assert (full.candidate_type, full.num_refinement_steps, full.do_validate) == (
        "iterate",
        5,
        True,
    )
    one = resolve_config(ProseSettings(variant="1sc_ap_nv"), "gpt-4o")
    assert (one.candidate_type, one.num_refinement_steps, one.do_validate) == ("single", 1, False)
    assert resolve_config(ProseSettings(variant="1nc"), "x").candidate_type == "none"
    assert resolve_config(ProseSettings(variant="full+icl"), "x").use_icl
    explicit = resolve_config(ProseSettings(variant="1sc", num_refinement_steps=4), "gpt-4o")
    assert explicit.num_refinement_steps == 4


# --- the released code's ways, each behind a knob (docs/fidelity.md) -----------------

RELEASED = dict(answer_normalisation="released")


async def test_released_normalisation_lowercases_the_coalesced_preference_and_appends_a_newline():
    # prose.py: Prose.coalesce_preferences reads its answer with extract_raw_string_from_response
    # (lower-cased, "\n" appended); Prose.complete returns that set, the string the metrics score
    m = model(coalesce="Reasoning.\nPreferences: Use Short Sentences; Include A Simile")
    prose, _ = make(Prose, m, num_refinement_steps=1, **RELEASED)
    await step(prose, 0, draft_text="d", user_text="u")
    got, _ = await step(prose, 1, draft_text="d", user_text="u")
    assert got.preferences == "use short sentences; include a simile\n"
    plain, _ = make(
        Prose, model(coalesce="Preferences: Use Short Sentences"), num_refinement_steps=1
    )
    await step(plain, 0, draft_text="d", user_text="u")
    got, _ = await step(plain, 1, draft_text="d", user_text="u")
    assert got.preferences == "Use Short Sentences"


async def test_released_normalisation_takes_the_first_preferences_line_not_the_last():
    # prose.py: extract_raw_string_from_response stops at the first keyword line with an answer
    answer = "Preferences: Be Brief\nOn second thought:\nPreferences: be long"
    only = dict(num_refinement_steps=1, breakdown="never", do_validate=False)
    prose, _ = make(Prose, model(refine=answer), **only, **RELEASED)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["be brief\n"]
    plain, _ = make(Prose, model(refine=answer), **only)
    _, learned = await step(plain, 0, draft_text="d", user_text="u")
    assert learned.components == ["be long"]


async def test_released_breakdown_reads_the_answer_line_with_json_loads():
    # prose.py: Prose.breakdown_preferences -> parse_json_string_into_preference_set
    # (json.loads of the lower-cased line; anything else is the empty set: nothing changes)
    m = model(breakdown='Preferences: ["Use Short Sentences", "Include A Simile"]')
    prose, _ = make(Prose, m, num_refinement_steps=1, do_validate=False, **RELEASED)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["use short sentences", "include a simile"]
    fenced = model(breakdown="Preferences: ```['a', 'b']```")  # no JSON: kept as refined
    prose, _ = make(Prose, fenced, num_refinement_steps=1, do_validate=False, **RELEASED)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == ["use short sentences; include a simile\n"]


async def test_released_unparseable_refine_answer_becomes_the_empty_preference():
    # prose.py: Prose.learn wraps the failed line "" in get_preference_set -> {""}, a set that
    # is not empty: the latest preferences become "" and "" joins the accumulated set (its
    # comment says a bad parse changes nothing; the code does this)
    m = model(refine="I would rather not say.")
    prose, sink = make(
        Prose,
        m,
        num_refinement_steps=2,
        candidate_type="single",
        breakdown="never",
        do_validate=False,
        unparseable_answers="released",
        **RELEASED,
    )
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.components == [""]
    second = m.prompts("refine")[1]
    assert "So far we have found these preferences:\n\n" in second  # shown, empty
    assert [e.purpose for e in drain(sink) if isinstance(e, ParseFailed)] == ["refine", "refine"]
    ignored, _ = make(
        Prose,
        model(refine="I would rather not say."),
        num_refinement_steps=2,
        candidate_type="single",
        breakdown="never",
        do_validate=False,
        **RELEASED,
    )
    _, learned = await step(ignored, 0, draft_text="d", user_text="u")
    assert learned.components == []


async def test_released_unparseable_coalesce_answer_starts_from_the_empty_preference():
    # prose.py: Prose.coalesce_preferences returns get_preference_set("") = {""}: the draft is
    # written with one empty preference and the scored string is "" (the metrics' "None")
    m = model(coalesce="no label at all")
    prose, _ = make(
        Prose,
        m,
        num_refinement_steps=1,
        unparseable_answers="released",
        preference_lines="as_inferred",
        **RELEASED,
    )
    await step(prose, 0, draft_text="d", user_text="u")
    got, _ = await step(prose, 1, draft_text="d", user_text="u")
    assert got.preferences == "" and got.components == [""]
    kept, _ = make(Prose, model(coalesce="no label at all"), num_refinement_steps=1, **RELEASED)
    await step(kept, 0, draft_text="d", user_text="u")
    got, _ = await step(kept, 1, draft_text="d", user_text="u")
    assert got.preferences == "use short sentences; include a simile"  # ignored: as they were


@pytest.mark.parametrize(
    ("parsing", "scores"),
    [("released", [0]), ("forgiving", [-1])],
)
async def test_a_verdict_without_a_verdict_line_and_tied_keywords(parsing, scores):
    # prose.py: extract_keywords_from_response counts the lines naming each keyword (neutral
    # never); a tie is no verdict, which validate_preference reads as "neutral". The forgiving
    # parser gives a tie to the keyword said last.
    answer = "It somewhat confirms the tone.\nIt somewhat contradicts the length."
    m = model(refine=LIST, validate=answer)
    prose, _ = make(Prose, m, num_refinement_steps=1, verdict_parsing=parsing)
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.validation == {"use short sentences": scores, "include a simile": scores}


async def test_released_verdict_line_names_the_last_keyword_in_scale_order():
    # prose.py: extract_keywords_from_response: on a line holding "verdict", the last keyword
    # of the list found wins (the forgiving parser calls a line naming two points no answer)
    m = model(refine=LIST, validate="Verdict: strongly confirms, not strongly contradicts")
    prose, _ = make(Prose, m, num_refinement_steps=1, verdict_parsing="released")
    _, learned = await step(prose, 0, draft_text="d", user_text="u")
    assert learned.validation["use short sentences"] == [-2]


async def test_exact_equality_refines_after_a_whitespace_only_difference():
    # prose.py: Prose.learn stops when counterfactual_sequence == user_trajectory
    # (WritingTrajectory.__eq__: the same string)
    m = model()
    prose, _ = make(Prose, m, num_refinement_steps=1, text_equality="exact")
    await step(prose, 0, draft_text="the same words", user_text="the  same words")
    assert len(m.by_purpose("refine")) == 1


async def test_preference_lines_as_inferred_draw_a_coalesced_preference_on_one_line():
    # preference_conditioned_writing_agent.py: get_task_prompt lists the set's items, and a
    # coalesced preference is one item ("a; b" stays one line)
    m = model(coalesce="Preferences: be brief; use similes", candidate="c")
    prose, _ = make(Prose, m, num_refinement_steps=2, preference_lines="as_inferred")
    await step(prose, 0, draft_text="d", user_text="u")
    got, _ = await step(prose, 1, draft_text="d", user_text="u")
    assert got.components == ["be brief; use similes"]
    candidate = m.prompts("candidate")[-1]  # redrafted with the refined "a; b" preference
    assert "\nuse short sentences; include a simile\n" in candidate


async def test_icl_prose_keeps_the_example_framing_on_a_users_first_instance():
    # prose.py: Prose.complete sets icl_examples = [] (not None) when use_icl; get_task_prompt
    # then frames the (empty) examples, for the draft and every candidate
    m = model(candidate="c")
    prose, _ = make(IclProse, m, num_refinement_steps=2, empty_examples="framed")
    got, _ = await step(prose, 0, draft_text="d", user_text="u")
    assert got.examples == [] and got.examples_framed
    assert "these earlier examples" in m.prompts("candidate")[0]
    plain, _ = make(IclProse, model(), num_refinement_steps=1)
    got, _ = await step(plain, 0, draft_text="d", user_text="u")
    assert not got.examples_framed


async def test_prose_released_order_is_most_recent_first_under_exact_match():
    # prose.py: Prose.complete reverses what ExampleRetriever returns (oldest first)
    m = model(coalesce=lambda r: "Preferences: x")
    prose, _ = make(IclProse, m, num_refinement_steps=1, retrieved_order="released")
    for i in range(3):
        await step(prose, i, draft_text="d", user_text=f"USER-{i}")
    got, _ = await step(prose, 3, draft_text="d", user_text="u")
    assert [text for _, text in got.examples] == ["USER-2", "USER-1", "USER-0"]
