"""The scripted backend answers every purpose well-formed and deterministically."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prose_sim.models.backends.scripted import (
    ScriptedBackend,
    ScriptedSettings,
    simulated_prompt_usage,
    simulated_usage,
)
from prose_sim.models.protocol import ModelRequest, SamplingParams
from prose_sim.scales import PPCM_SCALE, VALIDATION_SCALE

pytestmark = pytest.mark.anyio


def request(purpose, content="Summarize this document about rivers and boats.", seed=0):
    return ModelRequest(
        role="agent",
        purpose=purpose,
        episode_id="e",
        instance=0,
        model="m",
        messages=[{"role": "user", "content": content}],
        params=SamplingParams(seed=seed),
    )


async def test_same_request_same_answer_and_seed_changes_it():
    backend = ScriptedBackend()
    a = await backend.complete(request("draft"))
    assert a == await backend.complete(request("draft"))
    assert a.text != (await backend.complete(request("draft", seed=1))).text


async def test_answers_follow_each_purposes_format():
    backend = ScriptedBackend()
    verdict = (await backend.complete(request("validate"))).text
    assert verdict.splitlines()[-1].removeprefix("Verdict: ") in VALIDATION_SCALE
    ppcm = (await backend.complete(request("judge_ppcm"))).text
    assert ppcm.splitlines()[-1].removeprefix("Verdict: ") in PPCM_SCALE
    prefs = (await backend.complete(request("refine"))).text
    assert prefs.splitlines()[-1].startswith("Preferences: ") and len(prefs.splitlines()[-1]) > len(
        "Preferences: "
    )
    phrase = (await backend.complete(request("infer"))).text  # CIPHER: the whole reply
    assert phrase and "Preferences:" not in phrase
    assert (await backend.complete(request("accept"))).text in ("Yes.", "No.")
    listed = (await backend.complete(request("breakdown"))).text
    assert isinstance(json.loads(listed.splitlines()[-1].removeprefix("Preferences: ")), list)


async def test_written_text_has_the_configured_length_and_token_counts():
    backend = ScriptedBackend(ScriptedSettings(min_words=5, max_words=5))
    done = await backend.complete(request("draft"))
    assert len(done.text.split()) == 5
    assert done.output_tokens > 0 and done.input_tokens > 0


async def test_each_answer_waits_the_simulated_latency_first(monkeypatch):
    import prose_sim.models.backends.scripted as scripted

    slept: list[float] = []

    async def sleep(delay: float) -> None:  # records the wait instead of taking it
        slept.append(delay)

    monkeypatch.setattr(scripted.anyio, "sleep", sleep)
    await ScriptedBackend(ScriptedSettings(latency_s=0.05)).complete(request("draft"))
    await ScriptedBackend(ScriptedSettings(latency_s=0.05, latency_jitter=0.5)).complete(
        request("draft")
    )
    await ScriptedBackend().complete(request("draft"))  # no latency: no wait
    assert slept[0] == 0.05 and 0.025 <= slept[1] <= 0.075 and len(slept) == 2


# the scripted answers of every run depend on these: a faster way to compute them must give
# exactly what the plain way gives
SPACES = [c for c in map(chr, range(0x3000 + 1)) if c.isspace()]
PROMPT_TEXT = st.text(alphabet=st.sampled_from([*SPACES, "a", "b", '"', "'", "é"]), max_size=60)


@settings(max_examples=300)
@given(st.lists(PROMPT_TEXT, max_size=3))
def test_prompt_usage_counts_the_joined_messages_words(contents):
    messages = [{"role": "user", "content": c} for c in contents]
    assert simulated_prompt_usage(messages) == simulated_usage(" ".join(contents))


@settings(max_examples=300)
@given(
    st.lists(PROMPT_TEXT, min_size=1, max_size=3),
    st.sampled_from(["draft", "demonstrate", "judge_ppcm", "refine"]),
)
def test_the_backends_prompt_usage_with_its_word_cache_is_the_plain_count(contents, purpose):
    backend = ScriptedBackend()
    messages = [{"role": "system", "content": c} for c in contents[:-1]]
    messages.append({"role": "user", "content": contents[-1]})
    asked = ModelRequest(
        role="user", purpose=purpose, episode_id="e", instance=0, model="m", messages=messages
    )
    for _ in range(2):  # counted, then remembered
        assert backend._prompt_usage(asked) == simulated_usage(" ".join(contents))


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**64), st.integers(min_value=1, max_value=5000))
def test_a_writing_answers_runs_are_drawn_as_randrange_and_randint_draw_them(seed, count):
    from prose_sim.models.backends.scripted import _runs

    ours, plain = random.Random(seed), random.Random(seed)
    runs = _runs(ours, count)
    for _ in range(12):
        assert next(runs) == (plain.randrange(count), plain.randint(3, 8))
    assert ours.getstate() == plain.getstate()
