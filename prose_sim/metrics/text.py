"""Metrics that need no model."""

from __future__ import annotations

import functools

from rapidfuzz.distance import Levenshtein


@functools.cache
def _tokenizers():
    try:
        from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer
    except ImportError:
        from prose_sim.errors import UsageError

        raise UsageError("the Levenshtein metric needs nltk: pip install 'nltk>=3.9'") from None
    return PunktSentenceTokenizer(), NLTKWordTokenizer()


def word_tokens(text: str) -> list[str]:
    """The released code's word tokens (nltk's ``word_tokenize``): sentences split by Punkt,
    each split by nltk's Treebank-style word tokenizer, so punctuation is its own token
    ("end." -> "end", "."; "it's" -> "it", "'s").

    ``word_tokenize`` needs the ``punkt_tab`` data download; we use the same two tokenizers
    without it: Punkt untrained (no data), which differs from the trained English model only
    on the abbreviations that model knows ("Mr. Smith" is one sentence there, two here)."""
    sentences, words = _tokenizers()
    return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]


def word_levenshtein(a: str, b: str) -> tuple[int, float]:
    """Word-level edit distance over ``word_tokens``, raw and normalized by the longer
    token count (0.0 for two empty texts, where the released code divides by zero)."""
    wa, wb = word_tokens(a), word_tokens(b)
    distance = Levenshtein.distance(wa, wb)
    longest = max(len(wa), len(wb))
    return distance, (distance / longest if longest else 0.0)
