"""The two writing tasks of PLUME and PRELUDE."""

from __future__ import annotations

import msgspec


class Task(msgspec.Struct, frozen=True):
    name: str
    # what the agent is asked to do with a document, in the prompts' words
    instruction: str
    # what the document is called in prompts
    document_label: str


TASKS: dict[str, Task] = {
    "summarization": Task(
        name="summarization",
        instruction="Summarize the following document.",
        document_label="Article",  # the released prompts' word for every source
    ),
    "email_writing": Task(
        name="email_writing",
        instruction="Write an email based on the following notes.",
        document_label="Notes",
    ),
}

FRAMEWORKS: tuple[str, ...] = ("plume", "prelude")
# Frameworks a scenario may name: the two benchmarks, and PRELUDE without edits (the
# released code's "prelude.no_edit": PRELUDE's users and prompts, but the user writes its
# own text instead of editing the draft; the metric-validity study compares all three).
RUN_FRAMEWORKS: tuple[str, ...] = (*FRAMEWORKS, "prelude.no_edit")


def persona_framework(framework: str) -> str:
    """The benchmark whose users and prompts a run framework uses ("prelude.no_edit" -> "prelude")."""
    return framework.split(".", 1)[0]


def user_edits(framework: str) -> bool | None:
    """Whether a run framework's users edit the draft: False for "prelude.no_edit", None
    (the persona's framework decides) otherwise."""
    return False if framework == "prelude.no_edit" else None
