"""Parsers for what models really print.

Models wrap answers in markdown, quotes and code fences, put the answer on the
line after its label, or give a verdict only inside their reasoning. Every
parser here accepts those forms, returns None when it finds nothing usable (so
the caller can count a parse failure), and never raises on any ``str``.
"""

from __future__ import annotations

import ast
import json
import functools
import re
import warnings

__all__ = ["parse_json_list", "parse_preferences", "parse_score", "parse_verdict"]

# Markdown and list decoration that may precede a label: "> **Preferences:**",
# "- Verdict:", "1. Score:", "## Preferences:".
_LINE_DECORATION = re.compile(r"^[\s>*_#`\-+•]*(?:\d{1,3}[.)]\s+)?[\s*_`]*")
_PREFERENCES_LABEL = re.compile(r"(?:final\s+)?preferences?\s*[*_`]*\s*:", re.IGNORECASE)
_VERDICT_LABEL = re.compile(r"(?:final\s+)?verdict\s*[*_`]*\s*:", re.IGNORECASE)
_SCORE_LABEL = re.compile(r"(?:final\s+)?score\s*[*_`]*\s*:", re.IGNORECASE)

_FENCE_LINE = re.compile(r"^\s*(?:```|~~~)[\w+-]*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_CURLY_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
_QUOTE_PAIRS = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("`", "`"))

# Bounds on how much work a pathological text can cause.
_MAX_LIST_CANDIDATES = 200
_MAX_LIST_CHARS = 50_000


# ---------------------------------------------------------------- helpers


def _labelled(line: str, label: re.Pattern[str]) -> str | None:
    """The rest of ``line`` after ``label`` when the line starts with it (markdown tolerated)."""
    cleaned = _LINE_DECORATION.sub("", line, count=1)
    match = label.match(cleaned)
    if match is None:
        return None
    return cleaned[match.end() :]


def _last_labelled_line(lines: list[str], label: re.Pattern[str]) -> tuple[int, str] | None:
    for index in range(len(lines) - 1, -1, -1):
        rest = _labelled(lines[index], label)
        if rest is not None:
            return index, rest
    return None


def _unwrap(text: str) -> str:
    """Strip whitespace, markdown emphasis, backticks and quotes around an answer."""
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip("*_`").strip()
        for left, right in _QUOTE_PAIRS:
            inner = text[len(left) : -len(right)]
            if (
                len(text) >= 2
                and text.startswith(left)
                and text.endswith(right)
                and left not in inner
                and right not in inner
            ):
                text = inner
                break
    return text


def _clean_items(items: list[object]) -> list[str]:
    cleaned = (item if isinstance(item, str) else str(item) for item in items if item is not None)
    return [item.strip() for item in cleaned if item.strip()]


def _python_literal(span: str) -> object:
    with warnings.catch_warnings():  # e.g. invalid escape sequences inside the items
        warnings.simplefilter("ignore")
        return ast.literal_eval(span)


def _literal_list(span: str) -> list[object] | None:
    """``span`` read as a JSON or Python list literal, with common slips forgiven."""
    if len(span) > _MAX_LIST_CHARS:
        return None
    attempts = [span, _TRAILING_COMMA.sub(r"\1", span)]
    curly = span.translate(_CURLY_QUOTES)
    if curly != span:
        attempts += [curly, _TRAILING_COMMA.sub(r"\1", curly)]
    for attempt in attempts:
        for loader in (json.loads, _python_literal):
            try:
                value = loader(attempt)
            except (Exception, RecursionError, MemoryError):
                continue
            if isinstance(value, list):
                return value
    return None


def _bracket_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every balanced ``[...]`` span, by bracket counting alone."""
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    for index, char in enumerate(text):
        if char == "[":
            stack.append(index)
        elif char == "]" and stack:
            spans.append((stack.pop(), index + 1))
    return spans


def _json_span(text: str, start: int) -> tuple[int, int] | None:
    """The JSON array starting at ``start``, found by the JSON scanner (strings may hold ``]``)."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except (Exception, RecursionError, MemoryError):
        return None
    return (start, end) if isinstance(value, list) else None


def _lists_in(text: str) -> list[tuple[int, int, list[str]]]:
    """Every list literal in ``text`` that holds at least one string: (start, end, items).

    Lists inside another found list are left out, so a nested list is read as a whole.
    """
    spans = set(_bracket_spans(text))
    for start in [i for i, c in enumerate(text) if c == "["][-_MAX_LIST_CANDIDATES:]:
        span = _json_span(text, start)
        if span is not None:
            spans.add(span)
    ordered = sorted(spans, key=lambda s: s[1])[-_MAX_LIST_CANDIDATES:]
    found: list[tuple[int, int, list[str]]] = []
    for start, end in ordered:
        value = _literal_list(text[start:end])
        if value is None or not any(isinstance(item, str) for item in value):
            continue
        items = _clean_items(value)
        if items:
            found.append((start, end, items))
    return [
        (s, e, items)
        for s, e, items in found
        if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in found)
    ]


def _whole_list(text: str) -> list[str] | None:
    """``text`` as one list literal (code fences and wrapping quotes tolerated)."""
    lines = [line for line in text.splitlines() if not _FENCE_LINE.match(line)]
    body = _unwrap("\n".join(lines))
    if not body.startswith("["):
        return None
    value = _literal_list(body)
    return None if value is None else _clean_items(value)


# ---------------------------------------------------------------- parsers


def parse_preferences(text: str) -> str | None:
    """The answer of the last ``Preferences:`` line, as one ``"; "``-separated string.

    The answer may follow the label on its line or, when that is empty, on the
    next lines up to a blank line (bullets become components). A JSON list
    answer is joined with ``"; "``. None when there is no label or no answer.
    """
    lines = text.splitlines()
    found = _last_labelled_line(lines, _PREFERENCES_LABEL)
    if found is None:
        return None
    index, rest = found
    following: list[str] = []
    position = index + 1
    if not _unwrap(rest):
        while position < len(lines) and not lines[position].strip():
            position += 1
    while position < len(lines) and lines[position].strip():
        following.append(lines[position])
        position += 1

    answer = _unwrap(rest)
    if answer:
        items = _whole_list(answer)
        if items is None and answer.startswith("[") and following:
            items = _whole_list("\n".join([answer, *following]))
        if items is None and answer[:1] in "\"'“" and "," in answer:
            items = _whole_list(f"[{answer}]")
        if items is not None:
            return "; ".join(items) or None
        return answer

    items = _whole_list("\n".join(following))
    if items is not None:
        return "; ".join(items) or None
    parts = []
    for line in following:
        if _FENCE_LINE.match(line):
            continue
        part = _BULLET.sub("", line, count=1)
        part = _unwrap(_unwrap(part).rstrip(";,")).rstrip(";,").strip()
        if part:
            parts.append(part)
    return "; ".join(parts) or None


def parse_json_list(text: str) -> list[str] | None:
    """A list of strings printed anywhere in ``text``.

    Prefers the list after the last ``Preferences:`` label, else the last list.
    Tolerates code fences, Python-style single quotes and trailing commas, and
    an answer whose opening bracket was prefilled (``"a", "b"]``).
    Items are stripped, empty ones dropped, non-strings turned into strings.
    """
    lines = text.splitlines(keepends=True)
    found = _last_labelled_line(lines, _PREFERENCES_LABEL)
    if found is not None:
        index, rest = found
        label_at = sum(len(line) for line in lines[:index]) + len(lines[index]) - len(rest)
        if _unwrap(rest).replace(" ", "") == "[]":
            return []
        after = [(s, e, items) for s, e, items in _lists_in(text) if s >= label_at]
        if after:
            return after[0][2]
    lists = _lists_in(text)
    if lists:
        return lists[-1][2]
    if text.lstrip()[:1] in ("\"", "'", "“"):
        # the continuation of a prefilled "Preferences: [": '"a", "b"]'
        lists = _lists_in("[" + text.lstrip())
        if lists and lists[0][0] == 0:
            return lists[0][2]
    return None


def _keyword_pattern(scale: dict[str, int]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """One regex matching any scale keyword as whole words, longest keyword first."""
    return _keyword_pattern_of(tuple(scale))


@functools.lru_cache(maxsize=64)  # a run uses a handful of scales, thousands of times
def _keyword_pattern_of(keywords: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    normal: dict[str, str] = {}
    for keyword in keywords:
        key = _normal(str(keyword))
        if key:
            normal[key] = keyword
    if not normal:
        return None
    alternatives = [
        r"[\s_\-]+".join(re.escape(word) for word in key.split())
        for key in sorted(normal, key=len, reverse=True)
    ]
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    return pattern, normal


def _normal(words: str) -> str:
    """A keyword or a match of one, lower-case, words joined by single spaces."""
    return " ".join(part for part in re.split(r"[\s_\-]+", words.lower()) if part)


def parse_verdict(text: str, scale: dict[str, int]) -> int | None:
    """The score of the verdict keyword in ``text``.

    First the last ``Verdict:`` line naming a keyword (or, when its rest is
    empty, the next non-empty line); else the keyword said most often anywhere,
    ties going to the one said last. Longer keywords win over keywords they
    contain ("somewhat confirms" over "confirms") and keywords match only as
    whole words (the FPM scale's "all" is not found in "overall").
    """
    compiled = _keyword_pattern(scale)
    if compiled is None:
        return None
    pattern, normal = compiled
    lines = text.splitlines()
    next_line = ""  # the nearest non-empty line below the one looked at
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        rest = _labelled(line, _VERDICT_LABEL)
        below, next_line = next_line, (line if line.strip() else next_line)
        if rest is None:
            continue
        if not _unwrap(rest):
            rest = below
        match = pattern.search(rest)
        if match is not None:
            return scale[normal[_normal(match.group())]]

    counts: dict[str, int] = {}
    last_at: dict[str, int] = {}
    for match in pattern.finditer(text):
        key = _normal(match.group())
        counts[key] = counts.get(key, 0) + 1
        last_at[key] = match.start()
    if not counts:
        return None
    best = max(counts, key=lambda key: (counts[key], last_at[key]))
    return scale[normal[best]]


# A number not glued to a word or a decimal point; "0-4" reads as 0 and 4.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
# Numbers that are the scale's top, not a rating: "3/4", "3 out of 4".
_DENOMINATOR = re.compile(r"(?:/|\bout\s+of)\s*$", re.IGNORECASE)


def _integers(text: str) -> list[int]:
    values = []
    for match in _NUMBER.finditer(text):
        if _DENOMINATOR.search(text[max(0, match.start() - 10) : match.start()]):
            continue
        whole, _, fraction = match.group().partition(".")
        if fraction.strip("0"):
            continue  # 3.5 is no integer rating
        try:
            values.append(int(whole))
        except ValueError:  # more digits than int() accepts
            continue
    return values


def parse_score(text: str, low: int, high: int) -> int | None:
    """An integer rating in [low, high].

    The first integer of the last ``Score:`` line when it is in range, else the
    last in-range integer of the text (denominators as in "3/4" are skipped,
    non-integers like 3.5 are ignored).
    """
    lines = text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        rest = _labelled(lines[index], _SCORE_LABEL)
        if rest is None:
            continue
        numbers = _integers(rest)
        if numbers and low <= numbers[0] <= high:
            return numbers[0]
        break
    in_range = [n for n in _integers(text) if low <= n <= high]
    return in_range[-1] if in_range else None
