"""The scripted backend: a deterministic, seeded test double.

It answers every purpose in the format the real prompts ask for, with
simulated latency and token counts, so the whole machinery can be tested and
benchmarked without a model. Its outputs are word salad drawn from the prompt:
nothing it produces is a research result.

Every answer depends only on (seed, request content), never on call order.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Iterator

import anyio
import msgspec

from prose_sim.models.protocol import Completion, ModelRequest
from prose_sim.scales import FPM_SCALE, PPCM_SCALE, SIMILARITY_SCALE, VALIDATION_SCALE
from prose_sim.seeding import derive_seed

STYLE_PHRASES = (
    "use short sentences",
    "adopt a playful tone",
    "include a rhetorical question",
    "write in the second person",
    "use bullet points",
    "include emojis",
    "keep it brief",
    "use vivid imagery",
    "open with a question",
    "use formal language",
    "include a simile",
    "end with a call to action",
)

_VERDICT_SCALES = {
    "validate": VALIDATION_SCALE,
    "judge_ppcm": PPCM_SCALE,
    "judge_fpm": FPM_SCALE,
    "judge_similarity": SIMILARITY_SCALE,
}
# the keywords of each scale, in order (what ``rng.choice`` draws from)
_VERDICT_KEYWORDS = {purpose: tuple(scale) for purpose, scale in _VERDICT_SCALES.items()}
_PREFERENCE_PURPOSES = {"refine", "coalesce"}  # answered on a "Preferences:" line
_PHRASE_PURPOSES = {"infer", "merge"}  # CIPHER: the whole reply is the preference
_WRITING_PURPOSES = {"draft", "demonstrate", "edit", "candidate"}


class ScriptedSettings(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 0
    latency_s: float = 0.0  # mean simulated latency per request
    latency_jitter: float = 0.0  # +- fraction of the mean, uniform
    min_words: int = 30
    max_words: int = 90


DEFAULT_SCRIPTED = ScriptedSettings()  # frozen: one shared default


def simulated_usage(text: str) -> int:
    """The test double's made-up token count (about 4 tokens per 3 words).

    Not an estimate of anything (``prose_sim.models.tokens`` holds the one
    estimate): it is what scripted runs report as usage, so results.csv of
    every scripted scenario depends on it and it stays as it is.
    """
    return (len(text.split()) * 4 + 2) // 3


def simulated_prompt_usage(messages: list[dict[str, str]]) -> int:
    """``simulated_usage`` of the messages' contents joined by spaces (counted apart: the
    same count, without the joined copy)."""
    return (sum(len(m["content"].split()) for m in messages) * 4 + 2) // 3


def _words_of(prompt: str) -> tuple[int, tuple[str, ...]]:
    """(how many words ``prompt`` has, its words but those holding triple quotes)."""
    words = prompt.split()
    if '"""' in prompt:
        return len(words), tuple(w for w in words if '"""' not in w)
    return len(words), tuple(words)


def _runs(rng: random.Random, count: int) -> Iterator[tuple[int, int]]:
    """(start, length) of the runs of words a writing answer takes, drawn as
    ``(rng.randrange(count), rng.randint(3, 8))`` would draw them (a property test holds the
    two equal), from ``getrandbits`` directly as CPython's ``randrange`` does: its calls cost
    a writing answer two thirds of its time. Endless: the caller takes what it needs."""
    getrandbits, bits = rng.getrandbits, count.bit_length()
    while True:
        start = getrandbits(bits)
        while start >= count:  # rejection sampling below ``count``, as randrange's
            start = getrandbits(bits)
        extra = getrandbits(3)  # randint(3, 8): 3 + one of 6
        while extra >= 6:
            extra = getrandbits(3)
        yield start, 3 + extra


class ScriptedBackend:
    def __init__(self, settings: ScriptedSettings = DEFAULT_SCRIPTED):
        self.settings = settings
        # a writing prompt recurs in every seed of its user and document (a draft's with the
        # same preferences, a PLUME user's always), a system message in every call of its
        # role: their words are cut once (this backend's own cache; a judge's prompts, each
        # with its own draft, do not go through it)
        self._words = functools.lru_cache(maxsize=1024)(_words_of)

    async def aclose(self) -> None:
        """Holds nothing."""

    async def complete(self, request: ModelRequest) -> Completion:
        s = self.settings
        rng = random.Random(derive_seed(s.seed, request.content_hash()))
        latency = s.latency_s * (1.0 + s.latency_jitter * rng.uniform(-1.0, 1.0))
        if latency > 0:
            await anyio.sleep(latency)
        else:  # anyio's checkpoint on asyncio (a run's loop, as its inboxes' futures need),
            await asyncio.sleep(0)  # without looking the backend up each call
        return self.compute(request, rng)

    def compute(self, request: ModelRequest, rng: random.Random) -> Completion:
        """The answer itself (no waiting): all the work the test double does."""
        text = self._answer(request, rng)
        return Completion(
            text=text,
            input_tokens=self._prompt_usage(request),
            output_tokens=simulated_usage(text),
        )

    def _prompt_usage(self, request: ModelRequest) -> int:
        """``simulated_prompt_usage`` of the request, a writing prompt's and a system message's
        words counted once."""
        messages = request.messages
        if not messages:
            return simulated_prompt_usage(messages)
        # the messages before the last (a system message) recur in every call of their role
        words = sum(self._words(m["content"])[0] for m in messages[:-1])
        last = messages[-1]["content"]
        words += self._words(last)[0] if request.purpose in _WRITING_PURPOSES else len(last.split())
        return (words * 4 + 2) // 3

    def _answer(self, request: ModelRequest, rng: random.Random) -> str:
        purpose = request.purpose
        if purpose in _VERDICT_SCALES:
            keyword = rng.choice(_VERDICT_KEYWORDS[purpose])
            return f"The text was compared with the description.\nVerdict: {keyword}"
        if purpose in _PREFERENCE_PURPOSES or purpose == "breakdown":
            picks = rng.sample(STYLE_PHRASES, rng.randint(1, 4))
            listed = purpose == "breakdown" or "JSON" in request.messages[-1]["content"]
            answer = json.dumps(picks) if listed else "; ".join(picks)
            return f"The texts were compared.\nPreferences: {answer}"
        if purpose in _PHRASE_PURPOSES:
            return "; ".join(rng.sample(STYLE_PHRASES, rng.randint(1, 3)))
        if purpose == "accept":  # the PRELUDE user: is the draft good enough?
            return "Yes." if rng.random() < 0.2 else "No."
        return self._writing(request, rng)

    def _writing(self, request: ModelRequest, rng: random.Random) -> str:
        """Words drawn in short runs from the last message: overlapping prompts
        give overlapping texts, as real writers of the same document would."""
        prompt = request.messages[-1]["content"] if request.messages else ""
        words = self._words(prompt)[1]
        if not words:
            return "Nothing to write about."
        n = rng.randint(
            self.settings.min_words, max(self.settings.min_words, self.settings.max_words)
        )
        out: list[str] = []
        runs = _runs(rng, len(words))
        while len(out) < n:
            start, length = next(runs)
            out.extend(words[start : start + length])
        text = " ".join(out[:n])
        # the task prompt asks for the text between triple quotes (as the released code's)
        return f'Here it is:\n"""\n{text}\n"""' if '"""' in prompt else text
