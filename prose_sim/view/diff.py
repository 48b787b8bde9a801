"""Word-level diff of the writer's draft against the user's text.

The diff is a longest common subsequence of words (rapidfuzz's Indel opcodes,
C++: the stdlib's difflib took most of the viewer's build time on a large run).

Both texts are split into words and punctuation marks, each with the
whitespace after it (which keeps the diff fast: half the tokens), so the
segments put back together give each text exactly. A segment is
``(op, text)`` with op 0: in both, -1: only in the draft, 1: only in the user's text.

Hostile sizes stay linear: the common head and tail of the two texts are matched
token by token first, and the longest common subsequence is computed only on what
lies between them when the two token counts multiply to at most ``LCS_BUDGET``
(about 4,500 words each: every ordinary answer). Beyond it, the middle is shown as
removed from the draft and added in the user's text, which is still a correct diff
(both texts come back whole), found in time linear in the texts' length.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Indel

_TOKENS = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


# the most token pairs the longest-common-subsequence step compares (rapidfuzz's
# bit-parallel Indel takes pairs / 64 word operations, and as many bits of memory)
LCS_BUDGET = 20_000_000


def word_diff(draft: str, user_text: str) -> list[tuple[int, str]]:
    a, b = tokens(draft), tokens(user_text)
    ops: list[int] = []
    parts: list[list[str]] = []  # each segment's pieces, joined once at the end (linear)

    def add(op: int, text: str) -> None:
        if not text:
            return
        if ops and ops[-1] == op:
            parts[-1].append(text)
        else:
            ops.append(op)
            parts.append([text])

    # matched on the words alone: "mat " and "mat," share the word
    for tag, i1, i2, j1, j2 in opcodes([t.rstrip() for t in a], [t.rstrip() for t in b]):
        if tag == "equal":
            same = "".join(a[i1:i2])
            if same == "".join(b[j1:j2]):  # the same words with the same spacing: one segment
                add(0, same)
                continue
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
    return [(op, "".join(pieces)) for op, pieces in zip(ops, parts)]


def opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """(tag, i1, i2, j1, j2) turning ``a`` into ``b``: equal head, the middle's longest common
    subsequence (or, past ``LCS_BUDGET``, one replacement), equal tail."""
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    a_end, b_end = len(a) - tail, len(b) - tail
    out: list[tuple[str, int, int, int, int]] = []
    if head:
        out.append(("equal", 0, head, 0, head))
    middle_a, middle_b = a[head:a_end], b[head:b_end]
    if middle_a and middle_b and len(middle_a) * len(middle_b) <= LCS_BUDGET:
        for op in Indel.opcodes(middle_a, middle_b):
            out.append(
                (
                    op.tag,
                    head + op.src_start,
                    head + op.src_end,
                    head + op.dest_start,
                    head + op.dest_end,
                )
            )
    elif middle_a or middle_b:
        out.append(("replace", head, a_end, head, b_end))
    if tail:
        out.append(("equal", a_end, len(a), b_end, len(b)))
    return out


def sides(segments: list[tuple[int, str]]) -> tuple[str, str]:
    """(draft, user text) back from the segments."""
    draft = "".join(t for op, t in segments if op <= 0)
    user = "".join(t for op, t in segments if op >= 0)
    return draft, user
