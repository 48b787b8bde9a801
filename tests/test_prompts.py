"""Prompt templates render for both tasks and frameworks and ask for what their parsers read."""

from __future__ import annotations

import re

import pytest

from prose_sim.scales import FPM_SCALE, PPCM_SCALE, SIMILARITY_SCALE, VALIDATION_SCALE
from prose_sim.templating import render, template_dir
from prose_sim.world.tasks import FRAMEWORKS, TASKS

DOCUMENT = "DOCUMENT-CURRENT: the council voted to reopen the old bridge."
EXAMPLES = [
    ("DOCUMENT-EX-1: a storm closed the harbour.", "USER-TEXT-1: Boats! Stayed home & waited."),
    ("DOCUMENT-EX-2: the library extended its hours.", "USER-TEXT-2: Books till late & snacks."),
]

# template -> (sample context besides task and framework, the format its last line asks for)
CONTEXTS: dict[str, tuple[dict[str, object], str | None]] = {
    "draft": ({"document": DOCUMENT, "preferences": "be brief", "examples": EXAMPLES}, None),
    "demonstrate": ({"document": DOCUMENT, "preferences": "be brief; use emojis"}, None),
    "prelude_edit": (
        {"document": DOCUMENT, "preferences": "be brief", "draft": "DRAFT-TEXT"},
        None,
    ),
    "prose_refine": (
        {
            "document": DOCUMENT,
            "preferences": "be brief",
            "candidate": "CANDIDATE-TEXT",
            "user_text": "USER-TEXT",
        },
        "Preferences:",
    ),
    "prose_breakdown": ({"preferences": "be brief and use emojis"}, "Preferences:"),
    "prose_validate": (
        {
            "component": "COMPONENT-X",
            "document": DOCUMENT,
            "user_text": "USER-TEXT",
            "preferences": "ALL-PREFERENCES",
            "scale": VALIDATION_SCALE,
        },
        "Verdict:",
    ),
    "prose_coalesce": ({"components": ["be brief", "be concise", "use emojis"]}, "Preferences:"),
    "cipher_infer": (
        {"document": DOCUMENT, "draft": "DRAFT-TEXT", "user_text": "USER-TEXT"},
        "Preferences:",
    ),
    "cipher_merge": ({"preference_sets": ["be brief; formal", "use emojis"]}, "Preferences:"),
    "judge_ppcm": (
        {"component": "COMPONENT-X", "text": "JUDGED-TEXT", "scale": PPCM_SCALE},
        "Verdict:",
    ),
    "judge_fpm": (
        {"components": ["COMPONENT-X", "COMPONENT-Y"], "text": "JUDGED-TEXT", "scale": FPM_SCALE},
        "Verdict:",
    ),
    "judge_similarity": (
        {"inferred": "INFERRED-PREFS", "true_preferences": "TRUE-PREFS", "scale": SIMILARITY_SCALE},
        "Verdict:",
    ),
}


def prompt(name: str, task: str = "summarization", framework: str = "plume", **overrides) -> str:
    context = {**CONTEXTS[name][0], **overrides}
    return render(name, task=TASKS[task], framework=framework, **context)


def test_every_template_file_is_covered():
    on_disk = {path.stem for path in template_dir().glob("*.j2")}
    assert on_disk == set(CONTEXTS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_renders_and_shows_its_inputs(name, task, framework):
    text = prompt(name, task, framework)
    assert text and "{{" not in text and "{%" not in text and "{#" not in text
    if name != "judge_similarity":  # as released, it shows only the two preference strings
        assert TASKS[task].instruction in text
    for value in CONTEXTS[name][0].values():
        if isinstance(value, str):
            assert value in text, f"{name} does not show {value!r}"


@pytest.mark.parametrize(("name", "label"), [(n, c[1]) for n, c in CONTEXTS.items() if c[1]])
def test_ends_with_its_format_line(name, label):
    for task in TASKS:
        last_line = prompt(name, task).splitlines()[-1]
        assert last_line.startswith(label)


def test_every_template_names_its_variables_in_a_comment():
    for path in template_dir().glob("*.j2"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("{#") and first.endswith("#}"), path.name


# ---------------------------------------------------------------- draft


@pytest.mark.parametrize("task", sorted(TASKS))
def test_draft_four_cases(task):
    plain = prompt("draft", task, preferences="", examples=[])
    with_prefs = prompt("draft", task, preferences="PREFS-X", examples=[])
    with_examples = prompt("draft", task, preferences="", examples=EXAMPLES)
    both = prompt("draft", task, preferences="PREFS-X", examples=EXAMPLES)
    assert "PREFS-X" not in plain and "Example" not in plain
    assert "PREFS-X" in with_prefs and "Example" not in with_prefs
    assert "PREFS-X" not in with_examples and "Example 2" in with_examples
    assert "PREFS-X" in both and "Example 2" in both
    for text in (plain, with_prefs, with_examples, both):
        assert DOCUMENT in text
        assert text.splitlines()[-1].startswith("Write only the")


def test_draft_examples_show_their_own_documents():
    text = prompt("draft", examples=EXAMPLES)
    for document, user_text in EXAMPLES:
        assert document in text and user_text in text
        # each example's document comes right before its user text
        assert text.index(document) < text.index(user_text)
    assert text.index(EXAMPLES[0][1]) < text.index(EXAMPLES[1][0])
    # the current document appears once, after the examples
    assert text.count(DOCUMENT) == 1
    assert text.index(DOCUMENT) > text.index(EXAMPLES[1][1])


def test_draft_examples_as_lists_from_events():
    text = prompt("draft", examples=[list(pair) for pair in EXAMPLES])
    assert EXAMPLES[1][0] in text


def test_draft_wording_depends_on_framework():
    plume = prompt("draft", framework="plume", preferences="", examples=[])
    prelude = prompt("draft", framework="prelude", preferences="", examples=[])
    assert plume != prelude
    assert re.search(r"\bedit\b", prelude) and not re.search(r"\bedit\b", plume)


def test_draft_without_framework_reads_as_plume():
    context = {**CONTEXTS["draft"][0]}
    assert render("draft", task=TASKS["summarization"], **context) == prompt("draft")


# ---------------------------------------------------------------- users


def test_prelude_edit_keeps_accept_keyword():
    assert "ACCEPT" in prompt("prelude_edit", framework="prelude")


def test_demonstrate_asks_to_show_every_preference():
    text = prompt("demonstrate")
    assert "be brief; use emojis" in text and "Every one" in text


# ---------------------------------------------------------------- PROSE


def test_refine_with_candidate_shows_it():
    text = prompt("prose_refine")
    assert "CANDIDATE-TEXT" in text and "Candidate" in text


@pytest.mark.parametrize("preferences", ["", "be brief"])
def test_refine_without_candidate_shows_none(preferences):
    text = prompt("prose_refine", candidate=None, preferences=preferences)
    assert "candidate" not in text.lower()
    assert "None" not in text
    assert "USER-TEXT" in text and DOCUMENT in text
    assert (preferences in text) if preferences else ("Current description" not in text)


def test_refine_with_empty_preferences_and_candidate():
    text = prompt("prose_refine", preferences="")
    assert "CANDIDATE-TEXT" in text and "(none yet)" in text


def test_breakdown_asks_for_json_list():
    assert prompt("prose_breakdown").splitlines()[-1].startswith('Preferences: ["')


def test_validate_shows_preferences_only_when_given():
    assert "ALL-PREFERENCES" in prompt("prose_validate")
    without = prompt("prose_validate", preferences=None)
    assert "ALL-PREFERENCES" not in without and "None" not in without
    assert "COMPONENT-X" in without


def test_coalesce_lists_every_component():
    text = prompt("prose_coalesce")
    for component in CONTEXTS["prose_coalesce"][0]["components"]:
        assert f"- {component}" in text


def test_cipher_merge_lists_every_set():
    text = prompt("cipher_merge")
    for preference_set in CONTEXTS["cipher_merge"][0]["preference_sets"]:
        assert preference_set in text


# ---------------------------------------------------------------- scales


@pytest.mark.parametrize(
    ("name", "scale"),
    [("prose_validate", VALIDATION_SCALE), ("judge_ppcm", PPCM_SCALE), ("judge_fpm", FPM_SCALE)],
)
def test_scale_keywords_rendered_from_the_scale(name, scale):
    text = prompt(name)
    for keyword in scale:
        assert f"- {keyword}" in text
    # listed from the highest score to the lowest
    ranked = sorted(scale, key=scale.get, reverse=True)
    positions = [text.index(f"- {keyword}\n") for keyword in ranked]
    assert positions == sorted(positions)
    # and taken from the scale passed in, not written into the template
    custom = {"KEYWORD-HIGH": 1, "KEYWORD-LOW": -1}
    text = prompt(name, scale=custom)
    assert "- KEYWORD-HIGH" in text and "- KEYWORD-LOW" in text
    assert not any(f"- {keyword}" in text for keyword in scale)


def test_fpm_lists_every_component():
    text = prompt("judge_fpm")
    assert "- COMPONENT-X" in text and "- COMPONENT-Y" in text


def test_similarity_lists_the_released_labels():
    text = prompt("judge_similarity")
    assert "TRUE-PREFS" in text and "INFERRED-PREFS" in text
    assert all(f"- {label}" in text for label in SIMILARITY_SCALE)
    assert text.splitlines()[-1] == "Verdict: <option>"
