"""The one task prompt: how the writer drafts and how the PLUME user writes its own text.

In the released code the drafts, the PROSE candidates and the user's own text
all come from one prompt with one system prompt per framework (PLUME: an
experienced writer told to emphasise the preferences; PRELUDE: a plain
assistant). A PLUME answer is the text between triple quotes, when it has them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prose_sim.parsing import parse_delimited, split_preferences
from prose_sim.templating import render_repeated, render_template, renders_builtin
from prose_sim.world.tasks import Task


def task_messages(
    task: Task,
    framework: str,
    document: str,
    preferences: str,
    examples: Sequence[tuple[str, str]] = (),
    template: str = "draft",
    components: Sequence[str] | None = None,
    examples_framed: bool = False,
) -> tuple[str, str]:
    """(system prompt, prompt) of the task prompt for ``document`` with ``preferences``.

    ``components``: the preferences as the prompt lists them (None: ``preferences`` split
    at "; "); ``examples_framed``: the examples' framing is shown even with no example
    (the released prompt for a PROSE+ICL agent's empty example list)."""
    system = render_repeated("draft_system", task=task, framework=framework)
    template = template or "draft"
    shown = split_preferences(preferences) if components is None else components
    given = dict(
        task=task,
        framework=framework,
        document=document,
        preferences=preferences,
        examples_framed=examples_framed,
    )
    if renders_builtin(template):  # a prompt that recurs (a user's text in every seed): once
        pairs = tuple((doc, text) for doc, text in examples)
        prompt = render_repeated(template, components=tuple(shown), examples=pairs, **given)
    else:  # a user's template, as documented: lists
        prompt = render_template(template, components=list(shown), examples=list(examples), **given)
    return system, prompt


def written_text(framework: str, answer: str) -> str:
    """The text an answer to the task prompt holds (PLUME: between triple quotes)."""
    return parse_delimited(answer) if framework != "prelude" else answer.strip()
