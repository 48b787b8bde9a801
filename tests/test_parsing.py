"""Parsers of model output: what models really print, and never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prose_sim.parsing import (
    parse_delimited,
    parse_json_list,
    parse_phrase,
    parse_preferences,
    parse_score,
    parse_verdict,
    parse_yes,
    split_preferences,
)
from prose_sim.scales import (
    FPM_RELEASED_KEYS,
    FPM_SCALE,
    PPCM_SCALE,
    SIMILARITY_RANGE,
    VALIDATION_SCALE,
)

# ---------------------------------------------------------------- parse_preferences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Preferences: use emojis; be brief", "use emojis; be brief"),
        ("preferences: lower case label", "lower case label"),
        ("Some reasoning first.\n\n**Preferences:** use emojis; be brief", "use emojis; be brief"),
        ("**Preferences**: use emojis", "use emojis"),
        ("## Preferences: headline style", "headline style"),
        ("> - Preferences: quoted bullet", "quoted bullet"),
        ("1. Preferences: numbered", "numbered"),
        ("Final Preferences: the final one", "the final one"),
        ('Preferences: "be brief; use emojis"', "be brief; use emojis"),
        ("Preferences: `be brief`", "be brief"),
        ("Preferences: **be brief**", "be brief"),
        ("Preferences: “be brief”", "be brief"),
    ],
)
def test_preferences_on_the_label_line(text, expected):
    assert parse_preferences(text) == expected


def test_preferences_takes_the_last_label():
    text = "Preferences: an early draft\nthinking more...\nPreferences: the answer"
    assert parse_preferences(text) == "the answer"


def test_preferences_on_the_next_lines():
    text = "Reasoning.\n\n**Preferences:**\n- use emojis\n- **be brief**;\n\nHope this helps!"
    assert parse_preferences(text) == "use emojis; be brief"


def test_preferences_after_a_blank_line():
    assert parse_preferences("Preferences:\n\nwrite like a tweet\n\nbye") == "write like a tweet"


def test_preferences_next_lines_stop_at_blank_line():
    assert parse_preferences("Preferences:\nbe brief\nuse emojis\n\nunrelated") == (
        "be brief; use emojis"
    )


@pytest.mark.parametrize(
    "text",
    [
        'Preferences: ["be brief", "use emojis"]',
        "Preferences: ['be brief', 'use emojis']",
        'Preferences: ["be brief", "use emojis",]',
        'Preferences:\n```json\n["be brief", "use emojis"]\n```',
        'Preferences: [\n  "be brief",\n  "use emojis"\n]',
        'Preferences: "be brief", "use emojis"',
        'Preferences: `["be brief", "use emojis"]`',
    ],
)
def test_preferences_json_list_is_joined(text):
    assert parse_preferences(text) == "be brief; use emojis"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no label at all",
        "Preferences:",
        "Preferences:   \n\n",
        "**Preferences:** **",
        "Preferences: []",
    ],
)
def test_preferences_none_when_missing_or_empty(text):
    assert parse_preferences(text) is None


def test_preferences_label_must_start_the_line():
    assert parse_preferences("I will list my Preferences: later") is None


# ---------------------------------------------------------------- parse_json_list


def test_json_list_plain():
    assert parse_json_list('["a", "b"]') == ["a", "b"]


def test_json_list_inside_prose():
    text = 'Splitting it up, I get ["use emojis", "be brief"] as the components.'
    assert parse_json_list(text) == ["use emojis", "be brief"]


def test_json_list_fenced():
    text = 'Here you go:\n```json\n[\n  "use emojis",\n  "be brief"\n]\n```\n'
    assert parse_json_list(text) == ["use emojis", "be brief"]


def test_json_list_single_quoted():
    assert parse_json_list("Preferences: ['use emojis', \"don't ramble\"]") == [
        "use emojis",
        "don't ramble",
    ]


def test_json_list_trailing_comma():
    assert parse_json_list('["a", "b",\n]') == ["a", "b"]


def test_json_list_curly_quotes():
    assert parse_json_list("[“a”, “b”]") == ["a", "b"]


def test_json_list_prefers_the_labelled_one():
    text = 'Preferences: ["x", "y"]\nFor comparison, the old list was ["old"].'
    assert parse_json_list(text) == ["x", "y"]


def test_json_list_else_the_last_one():
    assert parse_json_list('First ["a"], then ["b", "c"].') == ["b", "c"]


def test_json_list_brackets_inside_items():
    assert parse_json_list('["use [square] brackets", "end ] here"]') == [
        "use [square] brackets",
        "end ] here",
    ]


def test_json_list_ignores_citations():
    assert parse_json_list('As in [1], the list is ["a", "b"] [2].') == ["a", "b"]


def test_json_list_items_cleaned():
    assert parse_json_list('["  a ", "", "   ", "b"]') == ["a", "b"]


def test_json_list_nested_read_as_whole():
    assert parse_json_list('[["a", "b"]]') == ["a", "b"]


def test_json_list_continuation_of_a_prefilled_bracket():
    assert parse_json_list(' "a", "b"]') == ["a", "b"]


def test_json_list_labelled_empty_list():
    assert parse_json_list("Nothing stands out.\nPreferences: []") == []


@pytest.mark.parametrize("text", ["", "no list", "[not, a list", "[1, 2]", "[]", "['unclosed]"])
def test_json_list_none_when_absent(text):
    assert parse_json_list(text) is None


# ---------------------------------------------------------------- parse_verdict


def test_verdict_line():
    assert parse_verdict("It fits well.\nVerdict: strongly confirms", VALIDATION_SCALE) == 2


def test_verdict_line_with_markdown():
    assert parse_verdict("**Verdict:** *Somewhat Contradicts*", VALIDATION_SCALE) == -1


def test_verdict_line_wins_over_reasoning():
    text = "One might say it strongly confirms, strongly confirms even, but no.\nVerdict: neutral"
    assert parse_verdict(text, VALIDATION_SCALE) == 0


def test_verdict_answer_on_the_next_line():
    assert parse_verdict("Verdict:\n\nclearly exhibits", PPCM_SCALE) == 2


def test_verdict_line_without_keyword_falls_back_to_text():
    text = "The text somewhat contradicts the preference.\nVerdict: unclear"
    assert parse_verdict(text, VALIDATION_SCALE) == -1


def test_verdict_keyword_only_in_reasoning():
    text = "Looking at the summary, it clearly exhibits the preference throughout."
    assert parse_verdict(text, PPCM_SCALE) == 2


def test_verdict_longest_keyword_wins():
    scale = {"confirms": 5, "somewhat confirms": 1}
    assert parse_verdict("Verdict: somewhat confirms", scale) == 1
    assert parse_verdict("I think it somewhat confirms it.", scale) == 1
    assert parse_verdict("Verdict: confirms", scale) == 5


def test_verdict_tolerates_hyphens_and_spacing():
    assert parse_verdict("Verdict: somewhat-confirms", VALIDATION_SCALE) == 1
    assert parse_verdict("Verdict: strongly   contradicts", VALIDATION_SCALE) == -2


def test_verdict_most_frequent_keyword():
    text = "Some see neutral, but it somewhat confirms. It somewhat confirms, really."
    assert parse_verdict(text, VALIDATION_SCALE) == 1


def test_verdict_tie_goes_to_the_later_keyword():
    text = "strongly confirms? strongly contradicts? strongly contradicts... strongly confirms"
    assert parse_verdict(text, VALIDATION_SCALE) == 2


def test_verdict_fpm_whole_words():
    # the judge's forgiving FPM keys: the released labels and what the released parser seeks
    keys = {**FPM_SCALE, **FPM_RELEASED_KEYS}
    assert parse_verdict("Overall it keeps small preferences nonetheless.", keys) is None
    assert parse_verdict("It shows most of them.\nVerdict: Most preferences", keys) == 1
    assert parse_verdict("Verdict: exhibits none of the preferences", keys) == -2
    assert parse_verdict("Verdict: **exhibits all preferences**", keys) == 2


def test_verdict_none_without_keyword():
    assert parse_verdict("I cannot tell.\nVerdict: ???", VALIDATION_SCALE) is None
    assert parse_verdict("anything", {}) is None


# ---------------------------------------------------------------- parse_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Score: 3", 3),
        ("**Score:** 4", 4),
        ("Score: **2**/4", 2),
        ("Final score: 1", 1),
        ("Score: 4.0", 4),
        ("They are very close. I would give 3 out of 4.", 3),
        ("On the 0-4 scale this is a 2.", 2),
        ("Score: 9\nOn reflection, 1", 1),
        ("Score: 0", 0),
        ("Score: 3\nlater text mentions 2", 3),
    ],
)
def test_score(text, expected):
    assert parse_score(text, *SIMILARITY_RANGE) == expected


@pytest.mark.parametrize("text", ["", "no numbers", "Score: 7", "Score: 3.5", "version v2"])
def test_score_none(text):
    assert parse_score(text, *SIMILARITY_RANGE) is None


def test_score_negative_range():
    assert parse_score("Score: -2", -2, 2) == -2


# ---------------------------------------------------------------- never raise

FRAGMENTS = [
    "Preferences:",
    "**Preferences:**",
    "preferences :",
    "Verdict:",
    "**Verdict**:",
    "Score:",
    "[",
    "]",
    "[[",
    "]]",
    '"',
    "'",
    "`",
    "```",
    "```json",
    "“",
    "”",
    ",",
    ";",
    "-",
    "*",
    "#",
    ">",
    "\n",
    "\n\n",
    " ",
    "\\",
    "null",
    "1",
    "-3",
    "4.0",
    "3.5",
    "99999999999999999999999999",
    "/",
    "out of",
    *VALIDATION_SCALE,
    *PPCM_SCALE,
    *FPM_SCALE,
    "use emojis",
]

fragment_texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=40).map(
    "".join
)
any_text = st.text() | fragment_texts
scales = st.sampled_from([VALIDATION_SCALE, PPCM_SCALE, FPM_SCALE]) | st.dictionaries(
    st.text(max_size=12), st.integers(-3, 3), max_size=5
)


@given(any_text)
@settings(max_examples=300)
def test_parse_preferences_never_raises(text):
    result = parse_preferences(text)
    assert result is None or (isinstance(result, str) and result)


@given(any_text)
@settings(max_examples=300)
def test_parse_json_list_never_raises(text):
    result = parse_json_list(text)
    assert result is None or (
        isinstance(result, list) and all(isinstance(item, str) and item for item in result)
    )


@given(any_text, scales)
@settings(max_examples=300)
def test_parse_verdict_never_raises(text, scale):
    result = parse_verdict(text, scale)
    assert result is None or result in scale.values()


@given(any_text, st.integers(-5, 5), st.integers(0, 10))
@settings(max_examples=300)
def test_parse_score_never_raises(text, low, width):
    result = parse_score(text, low, low + width)
    assert result is None or (isinstance(result, int) and low <= result <= low + width)


@given(st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=5))
def test_json_list_round_trip(items):
    import json

    from prose_sim.parsing import is_placeholder

    expected = (
        None if any(is_placeholder(item) for item in items) else [item.strip() for item in items]
    )
    assert (
        parse_json_list("Preferences: " + json.dumps(items)) == expected
    )  # "<...>" and "..." are echoes


# --- as forgiving as the released code's extractors (prose.py: extract_raw_string_from_response,
# extract_keywords_from_response), and stricter where an answer is only an echo of the prompt


def test_an_answer_line_wrapped_in_quotes_is_read():
    assert parse_preferences('"Preferences: be brief; use emojis"') == "be brief; use emojis"
    assert parse_verdict('"Verdict: somewhat confirms"', VALIDATION_SCALE) == 1


def test_the_keyword_as_a_markdown_heading_with_the_answer_on_the_next_lines():
    text = "Reasoning here.\n\n## Preferences\n- be brief\n- use emojis\n"
    assert parse_preferences(text) == "be brief; use emojis"
    assert parse_verdict("Thinking.\n\n**Verdict**\nstrongly contradicts", VALIDATION_SCALE) == -2
    assert parse_json_list('### Preferences\n["a", "b"]') == ["a", "b"]


def test_the_answer_on_several_lines_is_read_up_to_a_blank_line():
    text = "Preferences:\nbe brief;\nuse emojis\n\nThat is all."
    assert parse_preferences(text) == "be brief; use emojis"


@pytest.mark.parametrize(
    "answer",
    [
        'Preferences: ["<component1>", "<component2>"]',
        'Preferences: ["<preference 1>", ...,  "<preference i>", ...]',
        'Preferences: ["be brief", "..."]',
        "Preferences: ['be brief', Ellipsis]",
        'Preferences: ["be brief", "Ellipsis"]',
    ],
)
def test_placeholders_echoed_from_the_prompt_are_parse_failures(answer):
    assert parse_json_list(answer) is None
    assert parse_preferences(answer) is None


def test_a_placeholder_description_is_a_parse_failure():
    assert parse_preferences("Preferences: <preference>; <preference>; ...") is None
    assert parse_preferences("Preferences: be brief; ...") is None


@pytest.mark.parametrize(
    "answer", ['Preferences: ["a", 3]', 'Preferences: ["a", null]', 'Preferences: ["a", ["b"]]']
)
def test_non_string_list_items_are_parse_failures(answer):
    assert parse_json_list(answer) is None


def test_a_verdict_naming_two_different_scale_points_is_a_parse_failure():
    assert parse_verdict("Verdict: somewhat confirms or neutral", VALIDATION_SCALE) is None
    assert parse_verdict("Verdict: strongly confirms (strongly confirms)", VALIDATION_SCALE) == 2


def test_the_task_answer_is_the_text_between_triple_quotes_else_the_whole_reply():
    assert parse_delimited('Here it is:\n"""\nThe summary.\n"""\nHope it helps.') == "The summary."
    assert parse_delimited("  Just the summary.  ") == "Just the summary."


def test_a_cipher_answer_is_the_whole_reply():
    assert (
        parse_phrase('"Concise, formal tone with bullet points."')
        == "Concise, formal tone with bullet points."
    )
    assert parse_phrase("Reasoning.\nPreferences: be brief") == "be brief"
    assert parse_phrase("   ") is None and parse_phrase("...") is None


@pytest.mark.parametrize(
    ("answer", "yes"),
    [("Yes.", True), ("yes, it is good", True), ("No.", False), ("Eyes: no", False)],
)
def test_the_prelude_users_yes_or_no(answer, yes):
    assert parse_yes(answer) is yes


# ------------------------------------------- the released readers (prose.py), for the knobs

from prose_sim.parsing import (  # noqa: E402
    released_answer_line,
    released_json_list,
    released_validation_keyword,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the first keyword line, lower-cased, "\n" appended
        ("Reasoning.\nPreferences: Be Brief\nPreferences: Be Long", "be brief\n"),
        # quotes and asterisks around the line and the answer are stripped
        ('**Preferences:** "Use Emojis"', "use emojis\n"),
        # an empty keyword line: the next lines up to a blank line, each with "\n"
        ("Preferences:\n- Be Brief\n- Use Emojis\n\nDone.", "\n- be brief\n- use emojis\n"),
        # a heading is not a keyword line; no keyword line: "" (the released failure)
        ("## Preferences: headline", ""),
        ("no label", ""),
    ],
)
def test_released_answer_line_is_extract_raw_string_from_response(text, expected):
    # prose.py: Prose.extract_raw_string_from_response
    assert released_answer_line(text) == expected


def test_released_json_list_is_json_loads_of_the_line():
    # prose.py: Prose.parse_json_string_into_preference_set
    assert released_json_list('["a", " b "]\n') == ["a", " b "]
    assert released_json_list('"one"') == ["one"]
    assert released_json_list("") is None and released_json_list("['a']") is None


KEYWORDS = list(VALIDATION_SCALE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning.\nVerdict: strongly confirms", "strongly confirms"),
        # "verdict" anywhere on the line; the last (line, keyword) in scale order wins
        ("My verdict: strongly confirms, not strongly contradicts", "strongly contradicts"),
        ("Verdict: somewhat confirms\nFinal verdict: neutral", "neutral"),
        # a stem ("strongly confirm") matches inside words
        ("Verdict: it is strongly confirmed", "strongly confirms"),
        # no verdict line: the keyword named on most lines, neutral never counted
        (
            "It strongly confirms.\nStrongly confirms again.\nSomewhat contradicts.",
            "strongly confirms",
        ),
        ("Neutral.\nNeutral.\nSomewhat contradicts.", "somewhat contradicts"),
        # a tie for the most, or nothing: no verdict
        ("It somewhat confirms.\nIt somewhat contradicts.", None),
        ("Neutral, really.", None),
    ],
)
def test_released_validation_keyword_is_extract_keywords_from_response(text, expected):
    # prose.py: Prose.extract_keywords_from_response(response, "verdict", keywords)
    assert released_validation_keyword(text, KEYWORDS) == expected


def test_a_preference_string_splits_at_semicolon_space_only_and_drops_empty_parts():
    assert split_preferences(" brief; use semicolons (;) when possible;  ; formal ") == [
        "brief",
        "use semicolons (;) when possible",
        "formal",
    ]
    assert split_preferences("") == []


# ---------------------------------------------------------------- unwrapping an answer

WRAPPED = st.text(alphabet=st.sampled_from(list(" \n*_`\"'“”‘’ab.")), max_size=12)


@settings(max_examples=500)
@given(WRAPPED)
def test_unwrapping_takes_its_shortcut_only_where_the_loop_would_change_nothing(text):
    from prose_sim.parsing import _unwrap, _unwrap_all

    assert _unwrap(text) == _unwrap_all(text)
