"""The scheduler engine: rows join and leave at every step, and nothing but speed depends on it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from prose_sim.models.backends.scheduler import Engine, PromptTooLong, Sequence  # noqa: E402
from prose_sim.models.local_loading import load_local_model  # noqa: E402
from prose_sim.models.protocol import SamplingParams  # noqa: E402
from prose_sim.testing.tiny_model import tiny_test_model  # noqa: E402

TEXTS = [
    "Summarize: the river rose overnight.",
    "Hi",
    "Write an email about the broken heater in flat four, which nobody has fixed for a month. " * 2,
    "Tell me about octopus colours.",
    "Describe the library, the park, the harbour and the old mill in a few words each, please.",
]
SAMPLED = dict(temperature=0.9, top_p=0.9, top_k=20, repetition_penalty=1.1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_test_model(tmp_path_factory.mktemp("tiny"))
    model, tokenizer, _, _ = load_local_model(str(path), dtype="float32", device="cpu")
    return model, tokenizer


def prompt_ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def one_at_a_time(model, tokenizer, ids, max_new_tokens):
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
    )[0, len(ids) :].tolist()
    eos = tokenizer.eos_token_id
    return out[: out.index(eos)] if eos in out else out


def run(engine, arrivals):
    """Submit ``arrivals[step]`` (a list of sequences) before each step, until all are done."""
    done, step = [], 0
    pending = dict(arrivals)
    while engine.busy or pending:
        for seq in pending.pop(step, []):
            engine.submit(seq)
        done += engine.step()
        step += 1
    return done


def engine_for(tiny, **kw):
    model, tokenizer = tiny
    return Engine(model, tokenizer, "cpu", **{"prefix_cache_tokens": 0, **kw})


def test_greedy_with_staggered_arrivals_equals_one_at_a_time_generate(tiny):
    model, tokenizer = tiny
    engine = engine_for(tiny, prefill_chunk=16)  # long prompts span several iterations
    seqs = [Sequence(prompt=prompt_ids(tokenizer, t), params=SamplingParams(max_new_tokens=6 + 3 * i))
            for i, t in enumerate(TEXTS)]  # fmt: skip
    done = run(engine, {0: seqs[:1], 2: seqs[1:3], 5: seqs[3:4], 9: seqs[4:]})
    assert len(done) == len(seqs) and not engine.running
    for seq in seqs:
        assert seq.output == one_at_a_time(model, tokenizer, seq.prompt, seq.params.max_new_tokens)
    assert engine.stats.max_rows > 1  # rows really decoded together
    assert engine.stats.prefill_tokens == sum(len(s.prompt) for s in seqs)  # no padding computed


def test_a_row_leaves_the_batch_in_the_step_it_ends(tiny):
    _, tokenizer = tiny
    engine = engine_for(tiny)
    engine.eos_ids = set()
    short = Sequence(prompt=prompt_ids(tokenizer, "Hi"), params=SamplingParams(max_new_tokens=2))
    long = Sequence(prompt=prompt_ids(tokenizer, "Hello"), params=SamplingParams(max_new_tokens=8))
    engine.submit(short)
    engine.submit(long)
    first = engine.step()  # both prefilled (first tokens), then one decode step: short is done
    assert first == [short] and engine.running == [long] and long.slot == 0
    assert engine.stats.idle_row_steps == 0
    rest = run(engine, {})
    assert rest == [long] and len(long.output) == 8 and long.finish == "length"


def test_a_sampled_answer_depends_on_its_seed_and_prompt_not_on_its_batch(tiny):
    _, tokenizer = tiny

    def sampled(i, seed):
        params = SamplingParams(seed=seed, max_new_tokens=12, **SAMPLED)
        return Sequence(prompt=prompt_ids(tokenizer, TEXTS[i]), params=params)

    alone = sampled(0, 7)
    run(engine_for(tiny), {0: [alone]})
    crowd = [sampled(i, 100 + i) for i in range(1, len(TEXTS))]
    joined_late = sampled(0, 7)
    run(engine_for(tiny, prefill_chunk=8), {0: crowd, 3: [joined_late]})
    assert joined_late.output == alone.output
    other = sampled(0, 8)
    run(engine_for(tiny), {0: [other]})
    assert other.output != alone.output


def test_prefix_cache_hits_give_the_same_tokens_as_misses(tiny):
    _, tokenizer = tiny
    shared = "You are a careful assistant. " * 4
    texts = [
        shared + "Summarize the river story.",
        shared + "Write to the landlord.",
        shared + "Hi",
    ]

    def answers(engine):
        seqs = [
            Sequence(prompt=prompt_ids(tokenizer, t), params=SamplingParams(max_new_tokens=10))
            for t in texts
        ]
        run(engine, {i: [s] for i, s in enumerate(seqs)})  # one after another: later ones can hit
        return [s.output for s in seqs]

    cold = engine_for(tiny)
    warm = engine_for(tiny, prefix_cache_tokens=1024, prefix_block=16)
    assert answers(warm) == answers(cold)
    assert warm.stats.cached_tokens >= 2 * 16 * (len(prompt_ids(tokenizer, shared)) // 16 - 1)
    assert warm.stats.prefill_tokens + warm.stats.cached_tokens == warm.stats.prompt_tokens
    assert cold.stats.cached_tokens == 0 and warm.prefix.hit_rate() > 0


def test_the_prefix_cache_stays_within_its_bound(tiny):
    _, tokenizer = tiny
    engine = engine_for(tiny, prefix_cache_tokens=64, prefix_block=16)
    seqs = [Sequence(prompt=prompt_ids(tokenizer, f"{i} " + TEXTS[2]), params=SamplingParams(max_new_tokens=2))
            for i in range(4)]  # fmt: skip
    run(engine, {i: [s] for i, s in enumerate(seqs)})
    assert engine.prefix.tokens <= 64 and engine.prefix.evicted_blocks > 0


def test_admission_keeps_to_the_row_and_kv_token_limits(tiny):
    _, tokenizer = tiny
    engine = engine_for(tiny, max_rows=2, max_kv_tokens=100_000)
    seqs = [
        Sequence(prompt=prompt_ids(tokenizer, t), params=SamplingParams(max_new_tokens=5))
        for t in TEXTS
    ]
    run(engine, {0: seqs})
    assert engine.stats.max_rows == 2 and all(s.finish for s in seqs)
    small = engine_for(tiny, max_kv_tokens=256)  # one 128-position row at a time... two fit
    seqs = [
        Sequence(prompt=prompt_ids(tokenizer, "Hi"), params=SamplingParams(max_new_tokens=5))
        for _ in range(4)
    ]
    run(small, {0: seqs})
    assert small.stats.max_rows == 2 and small.stats.peak_kv_tokens <= 256


def test_a_prompt_longer_than_the_context_is_refused(tiny):
    engine = engine_for(tiny)
    with pytest.raises(PromptTooLong, match=f"context holds {engine.context}"):
        engine.submit(Sequence(prompt=[5] * engine.context, params=SamplingParams()))
    with pytest.raises(PromptTooLong, match="empty"):
        engine.submit(Sequence(prompt=[], params=SamplingParams()))


def test_an_answer_stops_at_the_end_of_the_context(tiny):
    engine = engine_for(tiny)
    engine.eos_ids = set()
    seq = Sequence(prompt=[7] * (engine.context - 7), params=SamplingParams(max_new_tokens=50))
    run(engine, {0: [seq]})
    assert len(seq.output) == 7 and seq.finish == "length"  # the budget was cut to the room left


def test_dropping_a_waiting_or_running_request_frees_it(tiny):
    _, tokenizer = tiny
    engine = engine_for(tiny)
    engine.eos_ids = set()
    a, b, c = (
        Sequence(prompt=prompt_ids(tokenizer, t), params=SamplingParams(max_new_tokens=50))
        for t in TEXTS[:3]
    )
    engine.submit(a)
    engine.submit(b)
    engine.step()
    engine.submit(c)
    engine.drop(c)  # still waiting
    engine.drop(a)  # running: b moves into its slot
    assert engine.running == [b] and b.slot == 0 and not engine.waiting
    assert engine.stats.dropped == 2 and engine.stats.dropped_tokens == len(a.output)
    run(engine, {})
    assert len(b.output) == 50
