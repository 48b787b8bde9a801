"""The Levenshtein metric's word tokens are nltk 3.9.1's ``word_tokenize`` (untrained Punkt),
re-implemented without importing nltk: checked here against nltk itself where it is installed."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prose_sim.metrics.wordtokens import sentences, word_tokenize

CORPUS = Path(__file__).resolve().parents[1] / "prose_sim" / "world" / "corpus"


def _bundled_documents() -> list[str]:
    return [
        json.loads(line)["text"]
        for path in sorted(CORPUS.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


_PIECES = (
    "The cat sat",
    "Mr. Smith",
    "Dr. No",
    "e.g. this",
    "U.S. policy",
    "J. S. Bach",
    "at 3.5 km",
    "in 1999.",
    "No. 7",
    "can't",
    "won't",
    "I'm",
    "you'd",
    "they'll",
    "we've",
    "it's",
    "cannot",
    "gonna",
    "gimme",
    "wanna go",
    "'tis",
    "more'n",
    "d'ye",
    '"quoted"',
    "'single'",
    "“curly”",
    "‘curly’",
    "«guillemets»",
    "(aside)",
    "[note]",
    "{x}",
    "<tag>",
    "a--b",
    "wait...",
    "so . . .",
    "well—yes",
    "fig. 2",
    "ratio 3:1",
    "1,000 people",
    "$4.50",
    "50%",
    "#tag",
    "@user",
    "*bold*",
    "Q&A",
    "end.",
    "why?",
    "no!",
    "really?!",
    "yes;",
    "as follows:",
    "v. 2.0",
    "etc.",
    "i.e.",
    "``ticks''",
    "gimme'tis",
    "x 'tiſ",
    "CANNOT",
    "WANNA go",
    "O'Neil",
    "rock 'n' roll",
    "the '90s",
    "she said, 'go'",
    '"Hi."',
    "(See above.)",
)
_SEPARATORS = (" ", " ", " ", ". ", "! ", "? ", ", ", "; ", "\n", "\n\n", ".\n", "  ", ' "', '." ')


def _generated_corpus(count: int = 400, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(_PIECES))
            parts.append(rng.choice(_SEPARATORS))
        texts.append("".join(parts[: -1 if rng.random() < 0.5 else None]))
    return texts


# Expected tokens that hold without nltk installed (each checked against nltk 3.9.1 below too).
GOLDEN = {
    "Hello, world! It ends.": ["Hello", ",", "world", "!", "It", "ends", "."],
    'She said "no." Then left.': ["She", "said", "``", "no", ".", "''", "Then", "left", "."],
    "I can't go -- it's late...": ["I", "ca", "n't", "go", "--", "it", "'s", "late", "..."],
    "J. Bach wrote it. see 3. next": ["J.", "Bach", "wrote", "it", ".", "see", "3.", "next"],
    "see 3. Next": ["see", "3", ".", "Next"],
    "Mr. Smith arrived.": ["Mr", ".", "Smith", "arrived", "."],
    "well—yes (cost: $4.50)": ["well—yes", "(", "cost", ":", "$", "4.50", ")"],
}


def test_word_tokens_split_punctuation_clitics_and_quotes_as_nltk():
    for text, tokens in GOLDEN.items():
        assert word_tokenize(text) == tokens, text


def test_word_tokens_of_an_empty_or_blank_text_are_none():
    assert word_tokenize("") == []
    assert word_tokenize(" \n\n ") == []


def test_scoring_a_text_imports_neither_nltk_nor_scipy():
    code = (
        "import sys; from prose_sim.metrics.text import word_levenshtein;"
        "word_levenshtein('One. Two', 'One! Two');"
        "print(sorted(m for m in ('nltk', 'scipy', 'sklearn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- against nltk 3.9.1, the release the paper's code pins ---------------------------------------


@pytest.fixture(scope="module")
def nltk_tokenizers():
    nltk = pytest.importorskip("nltk")
    if not nltk.__version__.startswith("3.9."):
        pytest.skip(f"the released code pins nltk 3.9.1; installed {nltk.__version__}")
    from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer

    return PunktSentenceTokenizer(), NLTKWordTokenizer()


def _nltk_words(tokenizers, text: str) -> list[str]:
    punkt, treebank = tokenizers
    return [word for sentence in punkt.tokenize(text) for word in treebank.tokenize(sentence)]


def test_golden_tokens_are_nltks(nltk_tokenizers):
    for text, tokens in GOLDEN.items():
        assert _nltk_words(nltk_tokenizers, text) == tokens, text


def test_word_tokens_equal_nltks_on_every_bundled_document(nltk_tokenizers):
    documents = _bundled_documents()
    assert len(documents) > 50
    for text in documents:
        assert sentences(text) == nltk_tokenizers[0].tokenize(text)
        assert word_tokenize(text) == _nltk_words(nltk_tokenizers, text)


def test_word_tokens_equal_nltks_on_a_generated_corpus(nltk_tokenizers):
    for text in _generated_corpus():
        assert sentences(text) == nltk_tokenizers[0].tokenize(text), text
        assert word_tokenize(text) == _nltk_words(nltk_tokenizers, text), text


_ALPHABET = st.sampled_from(
    [
        *"aZb 9.,;:!?'\"`()[]{}<>-—–…$%&#@*\n\tſKı",
        "cannot",
        "Gonna",
        " 'tis",
        "Mr.",
        "n't",
        "'s",
        "''",
        "``",
        "J.",
        "3.",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_word_tokens_equal_nltks_on_any_text(nltk_tokenizers, text):
    assert sentences(text) == nltk_tokenizers[0].tokenize(text)
    assert word_tokenize(text) == _nltk_words(nltk_tokenizers, text)
