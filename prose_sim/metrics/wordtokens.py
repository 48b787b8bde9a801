"""The word tokens of nltk's ``word_tokenize`` (nltk 3.9.1, the release the paper's code pins),
re-implemented on the standard library's ``re`` so that scoring a text costs microseconds and
imports nothing heavy.

``word_tokenize`` splits a text into sentences with Punkt, then each sentence into words with
the Treebank-style ``NLTKWordTokenizer``. Importing nltk runs its package ``__init__``, which
imports scipy, scikit-learn and pandas (seconds in every process that scores a text), and nltk
3.10 routes every regular expression through a timeout wrapper that is slow per call and splits
dashes that 3.9.1 keeps. This module applies the same rules (nltk is Apache-2.0):

- sentences: Punkt *untrained* (the English model needs the ``punkt_tab`` data download): a
  period, "?" or "!" ends a sentence unless the token before it is an initial ("J.") or a number
  ("3.") followed by punctuation or a lower-case word, or an initial followed by a capital;
- words: the Treebank rules in nltk's order (quotes, punctuation, brackets, double dashes,
  closing quotes, clitics and the MacIntyre contractions).

``tests/test_wordtokens.py`` proves the tokens equal to nltk 3.9.1's on every bundled document,
on a generated corpus and under hypothesis.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator

# --- Punkt, untrained ------------------------------------------------------------------------

_NON_WORD = r"""(?:[)";}\]*:@'({\[!?])"""
_MULTI_CHAR = r"(?:-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_START = r"""[^("`{\[:;&#*@)}\]\-,]"""
_PUNKT_WORD = re.compile(
    rf"({_MULTI_CHAR}"
    rf"|(?={_WORD_START})\S+?(?=\s|$|{_NON_WORD}|{_MULTI_CHAR}|,(?=$|\s|{_NON_WORD}|{_MULTI_CHAR}))"
    r"|\S)"
)
_PERIOD_CONTEXT = re.compile(rf"[.?!](?=(?P<after_tok>{_NON_WORD}|\s+(?P<next_tok>\S+)))")
_REALIGN = re.compile(r"""["')\]}]+?(?:\s+|(?=--)|$)""", re.MULTILINE)
_NUMERIC = re.compile(r"^-?[.,]?\d[\d,.-]*\.?$")
_INITIAL = re.compile(r"[^\W\d]\.$")
_ELLIPSIS = re.compile(r"\.\.+$")
_SENT_END = frozenset(".?!")
_PUNCTUATION = frozenset(";:,.!?")


def _punkt_words(text: str) -> list[str]:
    return [word for line in text.split("\n") if line.strip() for word in _PUNKT_WORD.findall(line)]


def _breaks_after(token: str) -> bool:
    """Punkt's first pass: does this token end a sentence (no abbreviations are known)?"""
    if token in _SENT_END:
        return True
    if _ELLIPSIS.match(token):
        return False
    return token.endswith(".") and not token.endswith("..")


def _still_breaks(token: str, following: str) -> bool:
    """Punkt's second pass for a period-final token that breaks, with no trained parameters:
    an initial or a number before punctuation or a lower-case word is an abbreviation, and so is
    an initial before a capitalised word."""
    kind = _NUMERIC.sub("##number##", token.lower())
    if len(kind) > 1 and kind.endswith("."):
        kind = kind[:-1]
    initial = _INITIAL.match(token) is not None
    if not (initial or kind == "##number##"):
        return True
    if following in _PUNCTUATION or following[0].islower():
        return False
    return not (initial and following[0].isupper())


def _contains_break(context: str) -> bool:
    """A sentence break before the context's last token."""
    words = _punkt_words(context)
    for index, word in enumerate(words[:-1]):
        if _breaks_after(word) and (
            not word.endswith(".") or _still_breaks(word, words[index + 1])
        ):
            return True
    return False


def _last_whitespace(text: str) -> int:
    for index in range(len(text) - 1, -1, -1):
        if text[index] in string.whitespace:
            return index
    return 0


def _end_contexts(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Each candidate sentence end with its context (the word before it, the mark, the token
    after), skipping a candidate whose word overlaps the next one's, as Punkt does."""
    previous: tuple[re.Match[str], slice] | None = None
    previous_word = slice(0, 0)
    for match in _PERIOD_CONTEXT.finditer(text):
        before = text[previous_word.stop : match.start()]
        start = _last_whitespace(before)
        start = start + previous_word.stop + 1 if start else previous_word.start
        word = slice(start, match.start())
        if previous is not None and previous_word.stop <= word.start:
            yield previous[0], text[previous[1]] + previous[0].group() + previous[0]["after_tok"]
        previous, previous_word = (match, word), word
    if previous is not None:
        yield previous[0], text[previous[1]] + previous[0].group() + previous[0]["after_tok"]


def _sentence_slices(text: str) -> Iterator[slice]:
    last_break = 0
    for match, context in _end_contexts(text):
        if _contains_break(context):
            yield slice(last_break, match.end())
            last_break = match.start("next_tok") if match["next_tok"] else match.end()
    yield slice(last_break, len(text.rstrip()))


def sentences(text: str) -> list[str]:
    """Punkt's sentences (untrained), closing quotes and brackets realigned onto the sentence
    they close."""
    slices = list(_sentence_slices(text))
    out: list[str] = []
    shift = 0
    for index, current in enumerate(slices):
        first = slice(current.start + shift, current.stop)
        if index + 1 == len(slices):
            if text[first]:
                out.append(text[first])
            break
        following = slices[index + 1]
        realigned = _REALIGN.match(text[following])
        if realigned:
            out.append(text[first.start : following.start + len(realigned.group(0).rstrip())])
            shift = realigned.end()
        else:
            shift = 0
            if text[first]:
                out.append(text[first])
    return out


# --- Treebank words (NLTKWordTokenizer) ------------------------------------------------------

# A rule with the substrings it needs: a sentence holding none of them cannot match, so the rule
# is skipped (most rules match few sentences; checking a substring is far cheaper than a regex
# scan). An empty tuple: always applied.
_Replacement = str | Callable[[re.Match[str]], str]
_Rule = tuple[re.Pattern[str], _Replacement, tuple[str, ...]]
_GROUP_REFERENCE = re.compile(r"\\(?:g<(\d+)>|(\d))")


def _replacer(template: str) -> _Replacement:
    """A replacement template (``r" \1 \2"``) as a function of the match giving the same text.
    ``re`` expands a template with group references in Python, match by match, through two
    calls; a closure joining the pieces is several times faster. Every group our templates name
    takes part in every match; a group that did not would be "" here, as in ``re``."""
    pieces = _GROUP_REFERENCE.split(template)
    literals = pieces[0::3]
    groups = [int(named or digit) for named, digit in zip(pieces[1::3], pieces[2::3], strict=True)]
    match groups:
        case []:
            return template
        case [i]:
            a, b = literals
            return lambda m: a + (m[i] or "") + b
        case [i, j]:
            a, b, c = literals
            return lambda m: a + (m[i] or "") + b + (m[j] or "") + c
        case [i, j, k]:
            a, b, c, d = literals
            return lambda m: a + (m[i] or "") + b + (m[j] or "") + c + (m[k] or "") + d
    raise ValueError(f"a template with {len(groups)} group references: {template!r}")


def _rules(*rules: tuple[str, str, tuple[str, ...]]) -> tuple[_Rule, ...]:
    return tuple(
        (re.compile(pattern), _replacer(replacement), needs)
        for pattern, replacement, needs in rules
    )


_STARTING_QUOTES = _rules(
    ("([«“‘„]|[`]+)", r" \1 ", ("«", "“", "‘", "„", "`")),
    (r'^"', r"``", ('"',)),
    (r"(``)", r" \1 ", ("``",)),
    (r"""([ (\[{<])("|'{2})""", r"\1 `` ", ('"', "''")),
    (r"(?i)(')(?!re|ve|ll|m|t|s|d|n)(\w)\b", r"\1 \2", ("'",)),
)
_PUNCTUATION_RULES = _rules(
    (r"""([^.])(\.)([\]\)}>"'»”’ ]*)\s*$""", r"\1 \2 \3 ", (".",)),
    (r"([:,])([^\d])", r" \1 \2", (":", ",")),
    (r"([:,])$", r" \1 ", (":", ",")),
    (r"\.{2,}", r" \g<0> ", ("..",)),
    (r"[;@#$%&]", r" \g<0> ", (";", "@", "#", "$", "%", "&")),
    (r"""([^.])(\.)([\]\)}>"']*)\s*$""", r"\1 \2\3 ", (".",)),
    (r"[?!]", r" \g<0> ", ("?", "!")),
    (r"([^'])' ", r"\1 ' ", ("' ",)),
    (r"[*]", r" \g<0> ", ("*",)),
    (r"[\]\[\(\)\{\}\<\>]", r" \g<0> ", ("[", "]", "(", ")", "{", "}", "<", ">")),
    (r"--", r" -- ", ("--",)),
)
_ENDING_QUOTES = _rules(
    ("([»”’])", r" \1 ", ("»", "”", "’")),
    (r"''", " '' ", ("''",)),
    (r'"', " '' ", ('"',)),
    (r"\s+", " ", ()),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 ", ("'",)),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 ", ("'",)),
)
# MacIntyre's contractions, case-insensitive: their needles are checked on the lower-cased
# sentence, and on a non-ASCII sentence every rule runs (re's case-insensitive matching also
# pairs "s" with "ſ", "k" with the Kelvin sign, which lower() does not)
_CONTRACTIONS = _rules(
    (r"(?i)\b(can)(not)\b", r" \1 \2 ", ("cannot",)),
    (r"(?i)\b(d)('ye)\b", r" \1 \2 ", ("d'ye",)),
    (r"(?i)\b(gim)(me)\b", r" \1 \2 ", ("gimme",)),
    (r"(?i)\b(gon)(na)\b", r" \1 \2 ", ("gonna",)),
    (r"(?i)\b(got)(ta)\b", r" \1 \2 ", ("gotta",)),
    (r"(?i)\b(lem)(me)\b", r" \1 \2 ", ("lemme",)),
    (r"(?i)\b(more)('n)\b", r" \1 \2 ", ("more'n",)),
    (r"(?i)\b(wan)(na)(?=\s)", r" \1 \2 ", ("wanna",)),
    (r"(?i) ('t)(is)\b", r" \1 \2 ", (" 'tis",)),
    (r"(?i) ('t)(was)\b", r" \1 \2 ", (" 'twas",)),
)
_OPENING_RULES = _STARTING_QUOTES + _PUNCTUATION_RULES
# any contraction's needle: a lower-cased sentence with none skips all ten rules in one search
_ANY_CONTRACTION = re.compile(
    "|".join(re.escape(n) for _, _, needs in _CONTRACTIONS for n in needs)
)
_CONTRACTIONS_ALWAYS = tuple(
    (pattern, replacement, ()) for pattern, replacement, _ in _CONTRACTIONS
)


def _apply(rules: tuple[_Rule, ...], text: str, fold: bool = False) -> str:
    """The rules in order; with ``fold``, needles are looked for in the lower-cased text."""
    seen = text.lower() if fold else text
    for pattern, replacement, needs in rules:
        # map over a bound method: the needles are looked for without a Python frame each
        if not needs or any(map(seen.__contains__, needs)):
            text = pattern.sub(replacement, text)
            seen = text.lower() if fold else text
    return text


def treebank_words(sentence: str) -> list[str]:
    """nltk's ``NLTKWordTokenizer().tokenize`` of one sentence."""
    sentence = _apply(_OPENING_RULES, sentence)
    sentence = _apply(_ENDING_QUOTES, f" {sentence} ")
    if sentence.isascii():
        if _ANY_CONTRACTION.search(sentence.lower()) is not None:
            sentence = _apply(_CONTRACTIONS, sentence, fold=True)
    else:
        sentence = _apply(_CONTRACTIONS_ALWAYS, sentence)
    return sentence.split()


def word_tokenize(text: str) -> list[str]:
    """nltk 3.9.1's ``word_tokenize(text)`` with an untrained Punkt."""
    return [word for sentence in sentences(text) for word in treebank_words(sentence)]
