"""Parsers for what models really print.

Models wrap answers in markdown, quotes and code fences, put the answer on the
line after its label, or give a verdict only inside their reasoning. Every
parser here accepts those forms, returns None when it finds nothing usable (so
the caller can count a parse failure), and never raises on any ``str``.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import warnings
from collections.abc import Mapping

__all__ = [
    "parse_delimited",
    "parse_json_list",
    "parse_phrase",
    "parse_preferences",
    "parse_score",
    "parse_verdict",
    "parse_verdict_released",
    "parse_yes",
]

# Markdown and list decoration that may precede a label: "> **Preferences:**",
# "- Verdict:", "1. Score:", "## Preferences:".
_LINE_DECORATION = re.compile(r"^[\s>*_#`\-+•]*(?:\d{1,3}[.)]\s+)?[\s*_`]*")


def _label(word: str) -> re.Pattern[str]:
    """A label: the keyword and a colon, or the keyword alone on its line ("## Preferences",
    "**Verdict**"), the answer then on the next lines."""
    return re.compile(rf"(?:final\s+)?{word}\s*[*_`]*\s*(?::|[*_`\s]*$)", re.IGNORECASE)


_PREFERENCES_LABEL = _label("preferences?")
_VERDICT_LABEL = _label("verdict")
_SCORE_LABEL = _label("score")
# What a prompt shows as a slot to fill ("<preference 1>", "...", Python's Ellipsis): an
# answer that echoes one is not an answer.
_PLACEHOLDER = re.compile(r"^\s*(?:<[^<>]*>|\.{2,}|…|ellipsis)\s*$", re.IGNORECASE)
_TRIPLE_QUOTED = re.compile(r'"""(.*?)"""', re.DOTALL)
_YES = re.compile(r"(?<!\w)yes(?!\w)", re.IGNORECASE)

_FENCE_LINE = re.compile(r"^\s*(?:```|~~~)[\w+-]*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_CURLY_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
_QUOTE_PAIRS = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("`", "`"))
# what may wrap an answer (``_unwrap`` strips it): emphasis, backticks, quotes
_WRAPPING = frozenset("*_`").union(*(left[0] + right[-1] for left, right in _QUOTE_PAIRS))

# Bounds on how much work a pathological text can cause.
_MAX_LIST_CANDIDATES = 200
_MAX_LIST_CHARS = 50_000


# ---------------------------------------------------------------- helpers


def _labelled(line: str, label: re.Pattern[str]) -> str | None:
    """The rest of ``line`` after ``label`` when the line starts with it (markdown and a
    line wrapped in quotes tolerated)."""
    stripped = line.strip()
    if len(stripped) >= 2 and stripped[0] in '"“' and stripped[-1] in '"”':
        line = stripped[1:-1]
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
    stripped = text.strip()
    if not stripped or (stripped[0] not in _WRAPPING and stripped[-1] not in _WRAPPING):
        return stripped  # nothing around it (most answers): what ``_unwrap_all`` gives
    return _unwrap_all(stripped)


def _unwrap_all(text: str) -> str:
    """``_unwrap`` step by step: strip, then one pair of quotes or emphasis, until none is left."""
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


def is_placeholder(text: str) -> bool:
    """A slot echoed from the prompt ("<component1>", "...", "Ellipsis"), not an answer."""
    return bool(_PLACEHOLDER.match(text))


def _clean_items(items: list[object]) -> list[str] | None:
    """The stripped, non-empty items; None when one is not a string or is a placeholder."""
    strings = [item for item in items if isinstance(item, str)]
    if len(strings) != len(items):
        return None
    cleaned = [item.strip() for item in strings if item.strip()]
    return None if any(is_placeholder(item) for item in cleaned) else cleaned


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


def _lists_in(text: str) -> list[tuple[int, int, list[str] | None]]:
    """Every list literal in ``text`` that holds at least one string: (start, end, items);
    items is None for a list that is no answer (a non-string item, a placeholder).

    Lists inside another found list are left out, so a nested list is read as a whole.
    """
    spans = set(_bracket_spans(text))
    for start in [i for i, c in enumerate(text) if c == "["][-_MAX_LIST_CANDIDATES:]:
        span = _json_span(text, start)
        if span is not None:
            spans.add(span)
    ordered = sorted(spans, key=lambda s: s[1])[-_MAX_LIST_CANDIDATES:]
    found: list[tuple[int, int, list[str] | None]] = []
    for start, end in ordered:
        value = _literal_list(text[start:end])
        if value is None or not any(isinstance(item, str) for item in value):
            continue
        items = _clean_items(value)
        if items is None or items:
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


def _no_placeholder(answer: str | None) -> str | None:
    """``answer``, unless one of its ``;``-separated parts is a placeholder."""
    if answer is None or any(is_placeholder(part) for part in answer.split(";") if part.strip()):
        return None
    if answer.startswith("[") and re.search(r"\bEllipsis\b|\.\.\.|…", answer):
        return None  # a list literal holding an ellipsis: the prompt's example, echoed
    return answer


# ---------------------------------------------------------------- parsers


def parse_preferences(text: str) -> str | None:
    """The answer of the last ``Preferences:`` line, as one ``"; "``-separated string.

    The answer may follow the label on its line or, when that is empty, on the
    next lines up to a blank line (bullets become components); the label may be a
    markdown heading of its own. A JSON list answer is joined with ``"; "``. None
    when there is no label, no answer, or the answer echoes a placeholder of the
    prompt ("<preference>", "...") or holds a non-string item.
    """
    return _no_placeholder(_preferences_answer(text))


def _preferences_answer(text: str) -> str | None:
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
        if (
            answer.startswith("[")
            and _literal_list(answer) is not None
            and _whole_list(answer) is None
        ):
            return None  # a list, but no answer: a non-string item or a placeholder
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
    Items are stripped and empty ones dropped; a list with a non-string item or
    a placeholder echoed from the prompt ("<component1>", "...") is no answer (None).
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
    if text.lstrip()[:1] in ('"', "'", "“"):
        # the continuation of a prefilled "Preferences: [": '"a", "b"]'
        lists = _lists_in("[" + text.lstrip())
        if lists and lists[0][0] == 0:
            return lists[0][2]
    return None


def parse_delimited(text: str) -> str:
    """The text between the first pair of triple quotes, else the whole answer (stripped).

    The task prompt asks for the text between triple quotes, as the released code does,
    and keeps the whole answer when there are none.
    """
    match = _TRIPLE_QUOTED.search(text)
    return (match.group(1) if match else text).strip()


def parse_phrase(text: str) -> str | None:
    """A short free-text answer (CIPHER's preference): the whole reply, stripped of wrapping
    quotes and markdown, or the answer of a ``Preferences:`` line when it has one.
    None when empty or a placeholder."""
    labelled = parse_preferences(text)
    if labelled is not None:
        return labelled
    answer = _unwrap(text)
    return _no_placeholder(answer) if answer else None


def parse_yes(text: str) -> bool:
    """A yes/no answer: True when it says "yes" anywhere (the released code's test, as a word)."""
    return _YES.search(text) is not None


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


@functools.lru_cache(maxsize=1024)  # the keywords of a few scales, said thousands of times
def _normal(words: str) -> str:
    """A keyword or a match of one, lower-case, words joined by single spaces."""
    return " ".join(part for part in re.split(r"[\s_\-]+", words.lower()) if part)


def parse_verdict(text: str, scale: dict[str, int]) -> int | None:
    """The score of the verdict keyword in ``text``.

    First the last ``Verdict:`` line naming a keyword (or, when its rest is
    empty, the next non-empty line); a verdict line naming two different scale
    points is no answer (None). Else the keyword said most often anywhere,
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
        named = {_normal(m.group()) for m in pattern.finditer(rest)}
        if len({scale[normal[key]] for key in named}) > 1:
            return None  # "Verdict: somewhat confirms or neutral": no single answer
        if named:
            return scale[normal[named.pop()]]

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


def parse_verdict_released(text: str, keys: Mapping[str, int]) -> int | None:
    """The score of a judge's answer read as the released judge reads it.

    The released code (tasks/writing/writing_quality_assesor.py, the parsing in
    ``score_adherence_to_preference_component``, ``score_adherence_to_compound_preference``
    and ``score_preference_similarity``): the answer, stripped (as the released GPT wrapper,
    ``OpenAIGPT.prompt_llm``, returns it) and lowercased, is split on
    newlines; each line loses the quotes and asterisks at its ends (nothing else, so
    "### Verdict:" or "- Verdict:" is no verdict line); the first line that then starts with
    "verdict:" and has something after it gives the answer (its rest, stripped of quotes,
    asterisks, colons and spaces); the score is that of the first of ``keys``, in their
    order, contained in the answer as a substring. None (the caller scores 0 and counts it)
    when there is no such line or its answer contains no key: the reasoning is never
    searched.
    """
    answer = ""
    for line in text.strip().lower().split("\n"):
        line = line.strip('"*')
        if line.startswith("verdict:"):
            answer = line.removeprefix("verdict:").strip('"*: ')
            if answer:
                break
    for key, score in keys.items():
        if key.lower() in answer:
            return score
    return None


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


# ---------------------------------------------------------------- PROSE's answers as released
#
# The released code's own readers of PROSE's answers (preference_inferrer/
# preference_inferring_agents/prose.py), for ``answer_normalisation = "released"`` and
# ``verdict_parsing = "released"``: they keep what it keeps, lower-case what it lower-cases
# and fail where it fails (docs/fidelity.md).


def released_answer_line(text: str, keyword: str = "Preferences:") -> str:
    """``Prose.extract_raw_string_from_response``: the answer on the first line that starts
    with ``keyword``, lower-cased, with a newline appended.

    Each line is stripped of ``"`` and ``*`` at both ends and lower-cased; the first one
    starting with the keyword gives its rest (stripped of ``"*:`` and spaces) plus "\\n".
    When that rest is empty, the following lines are added (each with "\\n") up to a blank
    line, and a later keyword line starts the answer anew. "" when no line starts with the
    keyword (the released code's failure).
    """
    key = keyword.lower()
    answer = ""
    found = False
    for raw in text.split("\n"):
        line = raw.strip('"*').lower()
        if line.startswith(key):
            found = True
            answer = line.removeprefix(key).strip('"*: ') + "\n"
            if answer.strip():
                break
        elif found:
            if not line.strip():
                break
            answer += f"{line}\n"
    return answer


def released_json_list(text: str) -> list[str] | None:
    """``Prose.parse_json_string_into_preference_set``: ``json.loads`` of the answer line.

    A JSON list of strings is the preferences as printed (an empty list: none); a JSON
    string is one preference. None for "" and anything ``json.loads`` rejects (the released
    code's empty set), and for values the released code cannot hold (a list with a
    non-string item, a number, an object: it would fail later on them).
    """
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def released_validation_keyword(
    text: str, keywords: list[str], skip: str = "neutral"
) -> str | None:
    """``Prose.extract_keywords_from_response`` with line keyword "verdict".

    Every line (lower-cased) is checked for every keyword less a final "s" ("strongly
    confirm"), as a substring. A line holding such a stem and the word "verdict" anywhere
    makes that keyword the verdict; the last such (line, keyword) wins, keywords taken in
    the given order. With no verdict line: the keyword found on the most lines, ``skip``
    ("neutral") never counted; a tie for the most, or nothing found, is None.
    """
    lines_with = dict.fromkeys(keywords, 0)
    verdict: str | None = None
    for raw in text.split("\n"):
        line = raw.lower()
        for keyword in keywords:
            if keyword.lower().removesuffix("s") in line:
                lines_with[keyword] += 1
                if "verdict" in line:
                    verdict = keyword
    if verdict is not None:
        return verdict
    best: str | None = None
    most = 0
    for keyword in keywords:
        if keyword == skip:
            continue
        if lines_with[keyword] > most:
            best, most = keyword, lines_with[keyword]
        elif lines_with[keyword] == most:
            best = None
    return best


def split_preferences(preferences: str) -> list[str]:
    """A preference string's components: the parts between "; " (as the released code splits
    a user's preferences, so "use semicolons (;) when possible" stays whole), stripped, empty
    parts left out. The one split of a ``"; "``-joined preference string (the prompts'
    component lists, PROSE's starting components, the share of true components given)."""
    return [part.strip() for part in preferences.split("; ") if part.strip()]
