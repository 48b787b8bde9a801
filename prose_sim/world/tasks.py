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
        document_label="Document",
    ),
    "email_writing": Task(
        name="email_writing",
        instruction="Write an email based on the following notes.",
        document_label="Notes",
    ),
}

FRAMEWORKS: tuple[str, ...] = ("plume", "prelude")
