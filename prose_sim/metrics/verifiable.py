"""Verifiable preferences: deterministic checks for components decidable from the text alone.

Some preference components ("use emojis", "use semicolons (;) when possible") can be
decided by looking at a text; most ("be intensely emotional", "use imagery") cannot.
``checker_for`` maps a component description to its ``Checker`` by case-insensitive
keyword patterns, or to None. The aim is precision, not coverage: a component gets a
checker only when a simple rule decides it, and every rule and threshold is stated in
the checker's one-line description (the rule function's docstring).

Shared definitions, used by the rules below:

* lines: the text's non-empty lines, stripped, less a leading "Subject: ..." line.
* a closing line: one of the usual sign-offs ("Best", "Best regards", "Kind regards",
  "Regards", "Sincerely", "Thanks", "Thank you", "Cheers", "Yours", "Take care", ...),
  alone or followed by a name of up to three capitalized words, punctuation ignored.
* the body: the lines less a short greeting line first (<= 5 words, "Hi Sam,") and less
  everything from a closing line among the last three lines on.
* sentences: the body's lines split after ``. ! ? …`` (optionally followed by a closing
  quote or bracket) and whitespace. Only pieces that hold a word and end in terminal
  punctuation count, so "Best," or a bullet without a full stop is not a sentence.
  Abbreviations ("e.g.") split sentences and hard-wrapped sentences are cut at the line
  break: known limits. A sentence is a question when its final punctuation holds "?".
* words: runs of letters/digits, apostrophes inside ("don't" is one word); emojis and
  punctuation are not words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple


@dataclass(frozen=True)
class Checker:
    """A text-only rule deciding one kind of preference component."""

    name: str  # short stable id
    description: str  # one line: the exact rule
    pattern: str  # case-insensitive regex over component descriptions
    rule: Callable[[str], bool] = field(repr=False)

    def check(self, text: str) -> bool:
        """True when ``text`` satisfies the component."""
        return self.rule(text)


_REGISTRY: list[Checker] = []


def _checker(name: str, pattern: str) -> Callable[[Callable[[str], bool]], Callable[[str], bool]]:
    """Register a rule; its docstring becomes the checker's description."""

    def register(rule: Callable[[str], bool]) -> Callable[[str], bool]:
        if rule.__doc__ is None:
            raise TypeError(f"checker {name}: its rule needs a docstring (the rule, stated)")
        _REGISTRY.append(Checker(name, " ".join(rule.__doc__.split()), pattern, rule))
        return rule

    return register


# --- text helpers ---------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_CLOSING_WORDS = (
    r"(?i:(?:best|kind|warm|warmest|kindest)\s+regards|best(?:\s+wishes)?|regards|sincerely"
    r"|yours(?:\s+truly|\s+sincerely)?|sincerely\s+yours|warmly|respectfully|cordially|cheers"
    r"|thanks(?:\s+again)?|thank\s+you|many\s+thanks|all\s+the\s+best|take\s+care|talk\s+soon)"
)
_NAME = r"[A-Z][\w'’.-]*"
_CLOSING = re.compile(rf"{_CLOSING_WORDS}(?:[\s,.!]+{_NAME}(?:\s+{_NAME}){{0,2}})?")
_PRO_GREETING = re.compile(r"(?i:dear|hello|hi|good\s+(?:morning|afternoon|evening)|greetings)\b")
_GREETING = re.compile(rf"{_PRO_GREETING.pattern}|(?i:hey|howdy)\b")
_SPLIT = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'’”)\]*_])\s+")


@functools.lru_cache(maxsize=1024)  # several checkers count the same text's words
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[1:] if lines and re.match(r"(?i:subject)\s*:", lines[0]) else lines


def _bare(line: str) -> str:
    """The line without leading/trailing punctuation, markdown marks and emojis."""
    return re.sub(r"^[\W_]+|[\W_]+$", "", line)


def _is_closing(line: str) -> bool:
    return _CLOSING.fullmatch(_bare(line)) is not None


def _body(text: str) -> list[str]:
    lines = _lines(text)
    if lines and _GREETING.match(_bare(lines[0])) and len(_words(lines[0])) <= 5:
        lines = lines[1:]
    for i in range(max(0, len(lines) - 3), len(lines)):
        if _is_closing(lines[i]):
            return lines[:i]
    return lines


_TAIL = re.compile(r"[\W_]*$")  # the punctuation (and emojis) that end a piece


class _Sentence(NamedTuple):
    words: int
    question: bool


@functools.lru_cache(maxsize=512)  # several checkers read the same text's sentences
def _sentences(text: str) -> tuple[_Sentence, ...]:
    out = []
    for line in _body(text):
        for piece in _SPLIT.split(line):
            found = _TAIL.search(piece)  # always found: it may be empty
            tail = found.group() if found else ""
            if _words(piece) and re.search(r"[.!?…]", tail):
                out.append(_Sentence(len(_words(piece)), "?" in tail))
    return tuple(out)


def _count(words: tuple[str, ...], vocabulary: frozenset[str]) -> int:
    return sum(w.lower() in vocabulary and w != "US" for w in words)  # "US": the country


# --- the checkers ---------------------------------------------------------------------

_EMOJI = re.compile(
    "[\U0001f000-\U0001faff]|[\u2600-\u27bf\u2b00-\u2bff]\ufe0f"  # pictographs; symbol + VS16
    "|[\u231a\u231b\u23e9-\u23ec\u23f0\u23f3\u25fd\u25fe\u2614\u2615\u2648-\u2653\u267f\u2693"
    "\u26a1\u26aa\u26ab\u26bd\u26be\u26c4\u26c5\u26ce\u26d4\u26ea\u26f2\u26f3\u26f5\u26fa\u26fd"
    "\u2705\u270a\u270b\u2728\u274c\u274e\u2753-\u2755\u2757\u2795-\u2797\u27b0\u27bf\u2b1b"
    "\u2b1c\u2b50\u2b55]"  # the BMP characters that are emoji by default (Emoji_Presentation)
)


@_checker("emojis", r"\bemojis?\b")
def _emojis(text: str) -> bool:
    """At least one emoji: U+1F000-U+1FAFF, a BMP emoji-by-default symbol, or a symbol + U+FE0F."""
    return _EMOJI.search(text) is not None


@_checker("ampersands", r"ampersand|\(&\)")
def _ampersands(text: str) -> bool:
    """At least one "&" standing as a word between two words, and no more "and"s than such "&"s."""
    amps = len(re.findall(r"[^\W_][,)]?\s+&\s+(?=[^\W_])", text))
    ands = len(re.findall(r"\band\b", text, re.IGNORECASE))
    return amps >= 1 and ands <= amps


_ACRONYMS = frozenset(
    {
        "USA",
        "EU",
        "CEO",
        "CFO",
        "CTO",
        "COO",
        "NASA",
        "FBI",
        "CIA",
        "CNN",
        "BBC",
        "NBA",
        "NFL",
        "NYC",
        "API",
        "PDF",
        "URL",
        "HTML",
        "CSS",
        "SQL",
        "USB",
        "GPU",
        "CPU",
        "DNA",
        "GDP",
        "KPI",
        "ROI",
        "LLC",
        "INC",
        "LTD",
        "IPO",
        "NGO",
        "NATO",
        "WHO",
        "UNESCO",
        "COVID",
        "HIV",
        "MBA",
        "FAQ",
        "ETA",
        "EOD",
        "ASAP",
        "FYI",
        "TBD",
        "RSVP",
        "PTO",
        "OOO",
        "AKA",
        "DIY",
        "GPS",
        "ATM",
        "TODO",
    }
)


@_checker("allcaps_emphasis", r"all[- ]?caps")
def _allcaps(text: str) -> bool:
    """At least one all-uppercase word of 3+ letters not in a list of common acronyms
    (USA, CEO, NASA, ASAP, ...), in a text where under half the words are all-uppercase."""
    emphasis = [w for w in re.findall(r"\b[A-Z]{3,}\b", text) if w not in _ACRONYMS]
    return bool(emphasis) and len(emphasis) < len(_words(text)) / 2


@_checker("semicolons", r"semicolon")
def _semicolons(text: str) -> bool:
    """At least one ";" right after a word (or closing quote/bracket), then whitespace and a word
    (HTML entities such as "&amp;" do not count)."""
    text = re.sub(r"&#?\w+;", " ", text)
    return re.search(r"[^\W_][\"'’”)]?;\s+[\"'‘“(]?[^\W_]", text) is not None


_BULLET = re.compile(r"\s*(?:[-*•‣◦▪–]|\d{1,2}[.)])\s+\S")


@_checker("bullet_points", r"bullet")
def _bullets(text: str) -> bool:
    """2+ lines starting with a bullet (- * • ‣ ◦ ▪ –) or "1." / "1)" numbering."""
    return sum(_BULLET.match(line) is not None for line in text.splitlines()) >= 2


@_checker("rhetorical_questions", r"rhetorical\s+question")
def _rhetorical(text: str) -> bool:
    """At least one sentence ending in "?" (any question in a message counts as rhetorical)."""
    return sum(s.question for s in _sentences(text)) >= 1


@_checker("inquisitive", r"inquisitive")
def _inquisitive(text: str) -> bool:
    """At least two sentences ending in "?"."""
    return sum(s.question for s in _sentences(text)) >= 2


@_checker("parenthetical_asides", r"parenthetical")
def _parentheticals(text: str) -> bool:
    """At least one "( ... )" holding 2+ words and a space, not a markdown link target "](...)"."""
    return any(
        len(_words(inner)) >= 2 and " " in inner.strip()
        for inner in re.findall(r"(?<!\])\(([^()]*)\)", text)
    )


@_checker("short_sentences", r"short\s+(?:and\s+punchy\s+)?sentences|punchy")
def _short(text: str) -> bool:
    """At least 3 sentences of at most 8 words."""
    return sum(s.words <= 8 for s in _sentences(text)) >= 3


@_checker("long_sentences", r"long\s+(?:and\s+flowing\s+)?sentences")
def _long(text: str) -> bool:
    """At least 2 sentences of at least 25 words."""
    return sum(s.words >= 25 for s in _sentences(text)) >= 2


_FIRST_SINGULAR = frozenset({"i", "me", "my", "mine", "myself"})
_FIRST = _FIRST_SINGULAR | frozenset({"we", "us", "our", "ours", "ourselves", "let's", "let’s"})
_SECOND = frozenset({"you", "your", "yours", "yourself", "yourselves"})
_THIRD = frozenset(
    {
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
    }
)


@_checker("second_person", r"second[- ]person")
def _second_person(text: str) -> bool:
    """you/your/yours/yourself(ves) 3+ times, and at least as often as I/me/my/mine/myself."""
    words = _words(text)
    you = _count(words, _SECOND)
    return you >= 3 and you >= _count(words, _FIRST_SINGULAR)


@_checker("third_person", r"third[- ]person")
def _third_person(text: str) -> bool:
    """No first/second-person pronoun (I, me, we, us, let's, you, ...) and 1+ third-person one."""
    words = _words(text)
    return _count(words, _FIRST | _SECOND) == 0 and _count(words, _THIRD) >= 1


_PERSON = rf"(?!{_CLOSING_WORDS}\b|Your\b|The\b){_NAME}(?:\s+{_NAME})?"
_EPITHETS = (
    re.compile(rf"{_PERSON},\s+the\s+\S.*"),  # Sam, the deadline slayer
    re.compile(rf"{_PERSON}\s+the\s+[A-Z].*"),  # Alex the Bold
    re.compile(rf"{_PERSON},\s+(?:[A-Z][\w'’-]*\s+)+of\s+\S.*"),  # Sam, Destroyer of Deadlines
    # Your ever-curious colleague, Sam
    re.compile(rf"(?i:yours?)(?:\s+[a-z][\w'’-]*){{2,6}},?\s+{_PERSON}"),
)


@_checker("epithet_signoff", r"epithet")
def _epithet(text: str) -> bool:
    """The last line, or the last two joined, after an optional closing ("Cheers,") reads
    "Name, the ...", "Name the Capitalized...", "Name, Capitalized... of ..." or
    "Your <2+ words>, Name" (job titles like "Sam, Head of Sales" pass too: a known limit)."""
    lines = [_bare(line) for line in _lines(text)[-2:]]
    candidates = [lines[-1], " ".join(lines)] if lines else []
    for candidate in candidates:
        candidate = re.sub(rf"^{_CLOSING_WORDS}\s*[,.!—–-]\s*", "", candidate)
        if len(_words(candidate)) <= 12 and any(p.fullmatch(candidate) for p in _EPITHETS):
            return True
    return False


@_checker("question_answer_structure", r"question[- ]answer")
def _question_answer(text: str) -> bool:
    """The first sentence is a question followed by a non-question, or at least two
    questions are each directly followed by a non-question."""
    sentences = _sentences(text)
    pairs = [i for i, (q, a) in enumerate(pairwise(sentences)) if q.question and not a.question]
    return 0 in pairs or len(pairs) >= 2


@_checker("no_closing", r"\bno\s+closing\b")
def _no_closing(text: str) -> bool:
    """The last line is not a closing line, nor a line of <= 6 words right after a closing line."""
    lines = _lines(text)
    if not lines:
        return True
    if _is_closing(lines[-1]):
        return False
    return not (len(lines) >= 2 and len(_words(lines[-1])) <= 6 and _is_closing(lines[-2]))


@_checker("thankful_closing", r"(?:thankful|grateful)\s+closing")
def _thankful(text: str) -> bool:
    """One of the last 3 lines holds thank*/grateful/gratitude/appreciat*."""
    tail = " ".join(_lines(text)[-3:])
    return re.search(r"\b(?:thank|grateful|gratitude|appreciat)", tail, re.IGNORECASE) is not None


@_checker("professional_greeting_closing", r"greeting\s+and\s+closing")
def _professional(text: str) -> bool:
    """The first line starts with Dear/Hello/Hi/Good morning|afternoon|evening/Greetings and
    one of the last 3 lines is a closing line."""
    lines = _lines(text)
    return (
        bool(lines)
        and _PRO_GREETING.match(_bare(lines[0])) is not None
        and any(_is_closing(line) for line in lines[-3:])
    )


BRIEF_WORDS = 60


@_checker("brief", r"\bbrief\b")
def _brief(text: str) -> bool:
    """At most 60 words (emojis and punctuation are not words)."""
    return len(_words(text)) <= BRIEF_WORDS


CHECKERS: tuple[Checker, ...] = tuple(_REGISTRY)


@functools.lru_cache(maxsize=4096)  # components repeat across every instance of a run
def checker_for(component: str) -> Checker | None:
    """The checker matching a component description (case-insensitive keyword patterns), or None."""
    for checker in CHECKERS:
        if re.search(checker.pattern, component, re.IGNORECASE):
            return checker
    return None
