"""Prompt templates render for both tasks and frameworks and ask for what their parsers read."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prose_sim.scales import FPM_SCALE, PPCM_SCALE, SIMILARITY_SCALE, VALIDATION_SCALE
from prose_sim.templating import render, template_dir
from prose_sim.world.tasks import FRAMEWORKS, TASKS

DOCUMENT = "DOCUMENT-CURRENT: the council voted to reopen the old bridge."
EXAMPLES = [
    ("DOCUMENT-EX-1: a storm closed the harbour.", "USER-TEXT-1: Boats! Stayed home & waited."),
    ("DOCUMENT-EX-2: the library extended its hours.", "USER-TEXT-2: Books till late & snacks."),
]

# template -> (sample context besides task and framework, the format its last line asks for);
# which templates state the task's instruction: STATES_INSTRUCTION (the released code's task,
# inference and judge prompts name the task in their own words, if at all)
CONTEXTS: dict[str, tuple[dict[str, object], str | None]] = {
    "draft": (
        {
            "document": DOCUMENT,
            "preferences": "be brief",
            "components": ["be brief"],
            "examples": EXAMPLES,
        },
        None,
    ),
    "draft_system": ({}, None),
    "infer_system": ({}, None),
    "prelude_accept": (
        {"document": DOCUMENT, "preferences": "be brief", "draft": "DRAFT-TEXT"},
        None,
    ),
    "prelude_edit": ({"preferences": "be brief", "draft": "DRAFT-TEXT"}, None),
    "prose_refine": (
        {
            "document": DOCUMENT,
            "preferences": "be brief",
            "candidate": "CANDIDATE-TEXT",
            "user_text": "USER-TEXT",
            "listed": False,
        },
        "Reason first",
    ),
    "prose_breakdown": (
        {"preferences": "be brief and use emojis"},
        'Preferences: ["<preference 1>"',
    ),
    "prose_validate": (
        {
            "component": "COMPONENT-X",
            "user_text": "USER-TEXT",
            "others": ["OTHER-PREFERENCE"],
            "scale": VALIDATION_SCALE,
        },
        'Give your final decision on a line of its own that starts with "Verdict:"',
    ),
    "prose_coalesce": (
        {"components_json": '["be brief", "be concise", "use emojis"]', "listed": False},
        'Write the preferences on one line that starts with "Preferences:"',
    ),
    "cipher_infer": ({"draft": "DRAFT-TEXT", "user_text": "USER-TEXT"}, None),
    "cipher_merge": ({"preference_sets": ["be brief; formal", "use emojis"]}, None),
    "judge_system": ({"purpose": "judge_ppcm"}, None),
    "judge_ppcm": (
        {"component": "COMPONENT-X", "text": "JUDGED-TEXT", "scale": PPCM_SCALE},
        'Put your final choice on a new line that starts with "Verdict:"',
    ),
    "judge_fpm": (
        {"components": ["COMPONENT-X", "COMPONENT-Y"], "text": "JUDGED-TEXT", "scale": FPM_SCALE},
        'Put your final choice on a new line that starts with "Verdict:"',
    ),
    "judge_similarity": (
        {"inferred": "INFERRED-PREFS", "true_preferences": "TRUE-PREFS", "scale": SIMILARITY_SCALE},
        'Put your final choice on a new line that starts with "Verdict:"',
    ),
}
# as released, no judge prompt states the task's instruction: PPCM and FPM show the text
# and the preference(s), similarity only the two preference strings
STATES_INSTRUCTION: set[str] = set()
# context keys that choose what a template says rather than being shown in it
SELECTORS = {"purpose"}


def prompt(name: str, task: str = "summarization", framework: str = "plume", **overrides) -> str:
    context = {**CONTEXTS[name][0], **overrides}
    return render(name, task=TASKS[task], framework=framework, **context)


ROOT = Path(__file__).resolve().parents[1]


def test_a_source_checkout_reads_the_prompts_folder_of_the_repository():
    assert template_dir() == ROOT / "prompts"


def test_the_lookup_takes_a_wheels_prompts_first_and_never_a_stray_folder(tmp_path):
    package = tmp_path / "site" / "prose_sim"
    package.mkdir(parents=True)
    (tmp_path / "site" / "prompts").mkdir()  # another distribution's folder, no templates
    with pytest.raises(FileNotFoundError, match=r"draft\.j2"):
        template_dir(package)
    (tmp_path / "site" / "prompts" / "draft.j2").write_text("{# x #}", encoding="utf-8")
    assert template_dir(package) == tmp_path / "site" / "prompts"  # a checkout's layout
    (package / "prompts").mkdir()
    (package / "prompts" / "draft.j2").write_text("{# x #}", encoding="utf-8")
    assert template_dir(package) == package / "prompts"  # a wheel's, first


def test_the_wheel_carries_the_prompts_folder_inside_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    force_include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force_include == {"prompts": "prose_sim/prompts"}


def test_an_installed_wheel_renders_the_prompts_it_carries(tmp_path):
    """Built with hatchling (skipped without it), unpacked as pip installs it, rendered there."""
    pytest.importorskip("hatchling")
    build = [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("prose_sim-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    carried = {p.name for p in (site / "prose_sim" / "prompts").glob("*.j2")}
    assert carried == {p.name for p in (ROOT / "prompts").glob("*.j2")}
    script = (
        "from prose_sim.templating import render, template_dir; "
        "print(template_dir()); print(render('draft_system', framework='plume', task=None))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {script}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    folder, text = done.stdout.split("\n", 1)
    assert Path(folder) == site / "prose_sim" / "prompts" and text.strip()


def test_every_template_file_is_covered():
    on_disk = {path.stem for path in template_dir().glob("*.j2")}
    assert on_disk == set(CONTEXTS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_renders_and_shows_its_inputs(name, task, framework):
    text = prompt(name, task, framework)
    assert text and "{{" not in text and "{%" not in text and "{#" not in text
    if name in STATES_INSTRUCTION:
        assert TASKS[task].instruction in text
    for key, value in CONTEXTS[name][0].items():
        if isinstance(value, str) and key not in SELECTORS:
            assert value in text, f"{name} does not show {value!r}"


@pytest.mark.parametrize(("name", "label"), [(n, c[1]) for n, c in CONTEXTS.items() if c[1]])
def test_ends_with_its_format_line(name, label):
    for task in TASKS:
        last_line = prompt(name, task).splitlines()[-1]
        assert last_line.startswith(label)


def test_the_task_prompt_and_the_users_text_share_one_template():
    names = {path.stem for path in template_dir().glob("*.j2")}
    assert "demonstrate" not in names and "draft" in names


def test_every_template_names_its_variables_in_a_comment():
    for path in template_dir().glob("*.j2"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("{#") and first.endswith("#}"), path.name


# ---------------------------------------------------------------- the task prompt (draft.j2)
# preference_conditioned_writing_agent.py, get_task_prompt: one prompt for the writer and the user


def draft(task="summarization", framework="plume", preferences="", examples=()):
    components = [p for p in preferences.split("; ") if p]
    return prompt(
        "draft",
        task,
        framework,
        preferences=preferences,
        components=components,
        examples=list(examples),
    )


@pytest.mark.parametrize("task", sorted(TASKS))
def test_plume_task_prompt_four_cases(task):
    plain = draft(task)
    with_prefs = draft(task, preferences="PREFS-X; PREFS-Y")
    with_examples = draft(task, examples=EXAMPLES)
    both = draft(task, preferences="PREFS-X; PREFS-Y", examples=EXAMPLES)
    assert "PREFS-X" not in plain and "Example" not in plain
    assert "PREFS-X, PREFS-Y" in with_prefs and "Example" not in with_prefs
    assert "PREFS-X" not in with_examples and "Example 2" in with_examples
    assert "PREFS-X, PREFS-Y" in both and "Example 2" in both
    kind = "summary" if task == "summarization" else "email"
    for text in (plain, with_prefs, with_examples, both):
        assert DOCUMENT in text and f"write a short {kind}" in text.lower()
        assert f'triple quotes:\n"""\n<{kind}>\n"""' in text


def test_plume_task_prompt_restates_the_preferences_one_per_line_at_the_end():
    text = draft(preferences="PREFS-X; PREFS-Y")
    assert text.splitlines()[-2:] == ["PREFS-X", "PREFS-Y"]
    assert text.index('"""\n<summary>') < text.index("PREFS-X\nPREFS-Y")


def test_task_prompt_examples_show_the_documents_they_are_given():
    text = draft(examples=EXAMPLES)
    for document, user_text in EXAMPLES:
        assert document in text and user_text in text
        assert text.index(document) < text.index(user_text)
    # the current document appears once, after the examples
    assert text.count(DOCUMENT) == 1 and text.index(DOCUMENT) > text.index(EXAMPLES[1][1])


def test_task_prompt_examples_as_lists_from_events():
    assert EXAMPLES[1][0] in draft(examples=[list(pair) for pair in EXAMPLES])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_prelude_task_prompt_states_the_preferences_once_with_no_delimiters(task):
    plain = draft(task, framework="prelude")
    with_prefs = draft(task, framework="prelude", preferences="PREFS-X; PREFS-Y")
    assert plain.startswith(f"{TASKS[task].document_label}: {DOCUMENT}")
    assert "PREFS-X; PREFS-Y" in with_prefs and with_prefs.count("PREFS-X") == 1
    assert '"""' not in with_prefs and '"""' not in plain
    # the released PRELUDE task prompt shows no in-context examples
    assert EXAMPLES[0][1] not in draft(task, framework="prelude", examples=EXAMPLES)


def test_system_prompts_per_framework():
    task = TASKS["summarization"]
    assert "writer" in render("draft_system", task=task, framework="plume")
    assert "emphasis" in render("draft_system", task=task, framework="plume")
    assert "assistant" in render("draft_system", task=task, framework="prelude")
    assert "preferences" in render("infer_system", task=task, framework="plume")
    assert render("infer_system", task=task, framework="prelude") == render(
        "draft_system", task=task, framework="prelude"
    )


# ---------------------------------------------------------------- PRELUDE's user


def test_prelude_accept_asks_yes_or_no_about_the_draft_and_the_document():
    text = prompt("prelude_accept", framework="prelude")
    assert DOCUMENT in text and "DRAFT-TEXT" in text and "be brief" in text
    assert text.rstrip().endswith("Answer yes or no.")


def test_prelude_edit_has_no_document():
    text = prompt("prelude_edit", framework="prelude", document=DOCUMENT)
    assert "DRAFT-TEXT" in text and "be brief" in text and DOCUMENT not in text


# ---------------------------------------------------------------- PROSE (abstract_templates.py)


def test_refine_with_candidate_shows_it_after_the_preferences():
    text = prompt("prose_refine")
    assert text.index("be brief") < text.index("CANDIDATE-TEXT") < text.index("USER-TEXT")


@pytest.mark.parametrize("preferences", ["", "be brief"])
def test_refine_without_candidate_shows_none(preferences):
    text = prompt("prose_refine", candidate=None, preferences=preferences)
    assert "CANDIDATE-TEXT" not in text and "None" not in text
    assert "USER-TEXT" in text and DOCUMENT in text
    assert (preferences in text) if preferences else ("not found any preferences" in text)


def test_refine_with_empty_preferences_and_candidate():
    text = prompt("prose_refine", preferences="")
    assert "CANDIDATE-TEXT" in text and "not found any preferences" in text


def test_refine_carries_the_reasoning_directives():
    text = prompt("prose_refine")
    assert text.count("\n- ") == 6 and "soften" in text and "clear difference" in text


def test_refine_asks_for_a_json_array_when_breaking_down_at_each_step():
    assert "JSON array" in prompt("prose_refine", listed=True)
    assert "JSON" not in prompt("prose_refine", listed=False)


def test_breakdown_asks_for_a_concise_set_as_a_json_list():
    text = prompt("prose_breakdown")
    assert "concise set" in text and text.splitlines()[-1].startswith('Preferences: ["')


def test_validate_shows_the_other_preferences_only_when_given():
    assert "OTHER-PREFERENCE" in prompt("prose_validate")
    without = prompt("prose_validate", others=None)
    assert "OTHER-PREFERENCE" not in without and "None" not in without
    assert "COMPONENT-X" in without


def test_coalesce_shows_the_components_as_json_and_preserves_wording():
    text = prompt("prose_coalesce")
    assert '["be brief", "be concise", "use emojis"]' in text
    assert (
        "one preference description" in text and "exact wording" in text and "specificity" in text
    )
    listed = prompt("prose_coalesce", listed=True)
    assert "JSON list" in listed and "one preference description" not in listed
    # prelude_templates.py asks for a JSON list in every mode
    assert "JSON list" in prompt("prose_coalesce", framework="prelude")


def test_prelude_refine_asks_for_the_full_refined_preference():
    assert "full refined preference" in prompt("prose_refine", framework="prelude")
    assert "full refined preference" not in prompt("prose_refine", framework="plume")


# ---------------------------------------------------------------- CIPHER (plume/prelude_templates.py)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cipher_infer_shows_the_draft_and_the_revision_and_asks_for_a_short_phrase(framework):
    text = prompt("cipher_infer", framework=framework, document=DOCUMENT)
    assert DOCUMENT not in text and text.index("DRAFT-TEXT") < text.index("USER-TEXT")
    assert "short phrase" in text and "Preferences:" not in text


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cipher_merge_asks_for_the_most_represented_preferences(framework):
    text = prompt("cipher_merge", framework=framework)
    assert "most represented" in text and "Preferences:" not in text


def test_cipher_merge_lists_every_set():
    text = prompt("cipher_merge")
    for preference_set in CONTEXTS["cipher_merge"][0]["preference_sets"]:
        assert preference_set in text


# ---------------------------------------------------------------- scales


def test_validate_lists_the_scale_from_the_scale_passed_in():
    custom = prompt("prose_validate", scale={"KEYWORD-HIGH": 1, "KEYWORD-LOW": -1})
    assert "KEYWORD-HIGH the preference, KEYWORD-LOW the preference." in custom
    assert "strongly confirms" not in custom


def test_validate_shows_the_released_options_full_labels():
    # abstract_templates.py: validation_instruction_prompt lists the five options as full
    # labels ("strongly confirms the preference", ..., "is neutral toward the preference")
    text = prompt("prose_validate", scale=VALIDATION_SCALE)
    assert (
        "strongly confirms the preference, somewhat confirms the preference, "
        "is neutral toward the preference, somewhat contradicts the preference, "
        "strongly contradicts the preference." in text
    )


@pytest.mark.parametrize(
    ("name", "scale"),
    [("judge_ppcm", PPCM_SCALE), ("judge_fpm", FPM_SCALE)],
)
def test_scale_keywords_rendered_from_the_scale(name, scale):
    # one line of options, from the highest score to the lowest, as the released prompts
    lines = prompt(name).splitlines()
    assert ", ".join(sorted(scale, key=scale.get, reverse=True)) in lines
    # and taken from the scale passed in, not written into the template
    custom = {"KEYWORD-HIGH": 1, "KEYWORD-LOW": -1}
    text = prompt(name, scale=custom)
    assert "KEYWORD-HIGH, KEYWORD-LOW" in text.splitlines()
    assert not any(keyword in text for keyword in scale)


def test_fpm_lists_every_component():
    text = prompt("judge_fpm")
    assert "COMPONENT-X; COMPONENT-Y?" in text  # on one line, joined as released


def test_similarity_lists_the_released_labels():
    text = prompt("judge_similarity")
    assert "TRUE-PREFS" in text and "INFERRED-PREFS" in text
    assert ", ".join(SIMILARITY_SCALE) in text.splitlines()
    assert text.splitlines()[-1].endswith('"Verdict:"')


# ------------------------------------------- the task prompt's released wording and layout


@pytest.mark.parametrize(
    ("task", "label", "these"),
    [("summarization", "ARTICLE", "this article"), ("email_writing", "NOTES", "these notes")],
)
def test_task_prompt_names_the_article_or_notes_between_the_released_markers(task, label, these):
    # preference_conditioned_writing_agent.py: get_task_prompt calls the document "article"
    # (summaries) or "notes" (emails) and puts it between [START OF X] and [END OF X]
    for text in (draft(task), draft(task, preferences="P"), draft(task, examples=EXAMPLES)):
        assert f"[START OF {label}]\n{DOCUMENT}\n[END OF {label}]" in text
        assert these in text
    assert "ocument" not in draft(task, examples=EXAMPLES)


def test_task_prompt_frames_an_empty_example_list_when_asked():
    # preference_conditioned_writing_agent.py: get_task_prompt frames in_context_examples
    # whenever they are not None, an empty list included (PROSE with use_icl, first instance)
    framed = prompt("draft", preferences="", components=[], examples=[], examples_framed=True)
    assert "these earlier examples" in framed and "Example 1" not in framed
    assert "in the style of the examples above" in framed
    assert "these earlier examples" not in draft()


def test_task_prompt_lists_the_components_it_is_given_one_per_line():
    # get_task_prompt: a coalesced "a; b" is one item of the set, so one line
    text = prompt("draft", preferences="A-X; B-Y", components=["A-X; B-Y"], examples=[])
    assert text.splitlines()[-1] == "A-X; B-Y"


def test_a_repeated_system_prompt_is_the_same_text_as_rendered_and_a_run_folder_is_read_each_time(
    tmp_path,
):
    from prose_sim.templating import render_repeated, using_prompts

    task = TASKS["summarization"]
    for framework in FRAMEWORKS:
        for name in ("draft_system", "infer_system"):
            assert render_repeated(name, task=task, framework=framework) == render(
                name, task=task, framework=framework
            )
    path = tmp_path / "draft_system.j2"
    path.write_text("first", encoding="utf-8")
    with using_prompts(str(tmp_path)):
        assert render_repeated("draft_system", task=task, framework="plume") == "first"
        path.write_text("edited", encoding="utf-8")
        later = path.stat().st_mtime + 10  # a change the template loader's clock can see
        os.utime(path, (later, later))
        assert render_repeated("draft_system", task=task, framework="plume") == "edited"


def test_a_recurring_task_prompt_is_the_same_text_as_rendered_and_a_users_file_is_read_each_time(
    tmp_path,
):
    from prose_sim.actors.writing import task_messages
    from prose_sim.templating import render_template, using_prompts

    task = TASKS["email_writing"]
    examples = [("notes one", "an email"), ["notes two", "another"]]  # pairs as decoded, too
    for framework in FRAMEWORKS:
        for components in (None, ["A-X; B-Y"]):
            expected = render_template(
                "draft",
                task=task,
                framework=framework,
                document="the notes",
                preferences="A-X; B-Y",
                components=["A-X", "B-Y"] if components is None else components,
                examples=examples,
                examples_framed=False,
            )
            for _ in range(2):  # rendered, then remembered
                _, text = task_messages(
                    task, framework, "the notes", "A-X; B-Y", examples, components=components
                )
                assert text == expected
    # a persona's own template file and a run's prompt folder are rendered each time
    own = tmp_path / "mine.j2"
    for content in ("first {{ document }}", "edited {{ document }}"):
        own.write_text(content, encoding="utf-8")
        later = own.stat().st_mtime + 10
        os.utime(own, (later, later))
        _, text = task_messages(task, "plume", "notes", "", template=str(own))
        assert text == content.replace("{{ document }}", "notes")
    folder = tmp_path / "prompts"
    folder.mkdir()
    draft = folder / "draft.j2"
    for content in ("one", "two"):
        draft.write_text(content, encoding="utf-8")
        later = draft.stat().st_mtime + 10
        os.utime(draft, (later, later))
        with using_prompts(str(folder)):
            assert task_messages(task, "plume", "notes", "")[1] == content


_JUDGE_TEXTS = st.text(  # any text a judge is shown: spaces at its ends, braces, quotes, NULs
    st.characters(blacklist_categories=("Cs",)), max_size=200
) | st.sampled_from(["", " ", "\n", "{{ text }}", '"""', "\x00", " padded \n"])


@settings(max_examples=60, deadline=None)
@given(text=_JUDGE_TEXTS, other=_JUDGE_TEXTS)
def test_a_judge_prompt_around_a_text_is_the_text_rendered_in_full(text, other):
    from prose_sim.actors.judge import SCALES
    from prose_sim.templating import render_filled

    for task in TASKS.values():
        for name, texts, context in (
            ("judge_ppcm", {"text": text}, {"component": "be brief"}),
            ("judge_fpm", {"text": text}, {"components": ["be brief", "no jargon"]}),
            ("judge_similarity", {"inferred": text, "true_preferences": other}, {}),
        ):
            full = dict(task=task, framework="plume", scale=SCALES[name][0], **context)
            assert render_filled(name, texts, **full) == render(name, **full, **texts)


def test_only_a_variable_written_out_as_it_is_makes_a_hole_in_a_template():
    from prose_sim.templating import environment, writes_plainly

    def plain(source: str) -> bool:
        return writes_plainly(environment().parse(source), frozenset({"text"}))

    assert plain('Here:\n"""\n{{ text }}\n"""\n{% if a %}{{ a }}{% endif %}')
    assert plain("{% for x in xs %}{{ text }}{% endfor %}")  # written out, as often as it is
    assert not plain("{{ text | trim }}")  # a filter changes it
    assert not plain("{% if text %}{{ text }}{% endif %}")  # a condition reads it
    assert not plain("{% set t = text %}{{ t }}")
    assert not plain("{{ text ~ '!' }}")
    assert not plain("{% macro m() %}{{ text }}{% endmacro %}{{ m() | upper }}")
    assert not plain('{% include "other.j2" %}{{ text }}')


def test_a_judge_prompt_from_a_run_folder_is_rendered_in_full_each_time(tmp_path):
    from prose_sim.templating import render_filled, using_prompts

    path = tmp_path / "judge_ppcm.j2"
    path.write_text("{{ text | upper }} / {{ component }}", encoding="utf-8")
    with using_prompts(str(tmp_path)):
        assert render_filled("judge_ppcm", {"text": "a b"}, component="c") == "A B / c"
        path.write_text("{{ text | length }}", encoding="utf-8")
        later = path.stat().st_mtime + 10
        os.utime(path, (later, later))
        assert render_filled("judge_ppcm", {"text": "a b"}, component="c") == "3"
