"""Word-level diff of the writer's draft against the user's text.

The diff is a longest common subsequence of words (rapidfuzz's Indel opcodes,
C++: the stdlib's difflib took most of the viewer's build time on a large run).

Both texts are split into words and punctuation marks, each with the
whitespace after it (which keeps the diff fast: half the tokens), so the
segments put back together give each text exactly. A segment is
``(op, text)`` with op 0: in both, -1: only in the draft, 1: only in the user's text.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Indel

_TOKENS = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def word_diff(draft: str, user_text: str) -> list[tuple[int, str]]:
    a, b = tokens(draft), tokens(user_text)
    segments: list[tuple[int, str]] = []

    def add(op: int, text: str) -> None:
        if not text:
            return
        if segments and segments[-1][0] == op:
            segments[-1] = (op, segments[-1][1] + text)
        else:
            segments.append((op, text))

    # matched on the words alone: "mat " and "mat," share the word
    for op in Indel.opcodes([t.rstrip() for t in a], [t.rstrip() for t in b]):
        i1, i2, j1, j2 = op.src_start, op.src_end, op.dest_start, op.dest_end
        if op.tag == "equal":
            for ta, tb in zip(a[i1:i2], b[j1:j2]):
                word = ta.rstrip()
                add(0, word)
                if ta[len(word) :] == tb[len(word) :]:
                    add(0, ta[len(word) :])
                else:
                    add(-1, ta[len(word) :])
                    add(1, tb[len(word) :])
        else:
            add(-1, "".join(a[i1:i2]))
            add(1, "".join(b[j1:j2]))
    return segments


def sides(segments: list[tuple[int, str]]) -> tuple[str, str]:
    """(draft, user text) back from the segments."""
    draft = "".join(t for op, t in segments if op <= 0)
    user = "".join(t for op, t in segments if op >= 0)
    return draft, user
