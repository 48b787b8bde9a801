"""Metrics that need no model."""

from __future__ import annotations

import functools

from rapidfuzz.distance import Levenshtein

from prose_sim.metrics.wordtokens import word_tokenize


@functools.lru_cache(maxsize=4096)
def word_tokens(text: str) -> tuple[str, ...]:
    """The released code's word tokens (nltk's ``word_tokenize``): sentences split by Punkt,
    each split by nltk's Treebank-style word tokenizer, so punctuation is its own token
    ("end." -> "end", "."; "it's" -> "it", "'s").

    ``word_tokenize`` needs the ``punkt_tab`` data download; we apply the same rules without it
    (``metrics.wordtokens``, nltk 3.9.1's rules on the standard ``re``): Punkt untrained, which
    differs from the trained English model only on the abbreviations that model knows ("Mr.
    Smith" is one sentence there, two here). Computed once per distinct text: a user's text is
    scored against every draft of it."""
    return tuple(word_tokenize(text))


def word_levenshtein(a: str, b: str) -> tuple[int, float]:
    """Word-level edit distance over ``word_tokens``, raw and normalized by the longer
    token count (0.0 for two empty texts, where the released code divides by zero)."""
    wa, wb = word_tokens(a), word_tokens(b)
    distance = Levenshtein.distance(wa, wb)
    longest = max(len(wa), len(wb))
    return distance, (distance / longest if longest else 0.0)
