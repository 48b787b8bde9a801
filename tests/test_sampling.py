"""Vectorised next-token choice: the same distributions as transformers' processors, per row."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers.generation.logits_process import (  # noqa: E402
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from prose_sim.models.backends.sampling import RowSettings, choose, distribution, uniforms  # noqa: E402
from prose_sim.models.protocol import SamplingParams  # noqa: E402

ROWS = [
    SamplingParams(
        temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05, seed=1
    ),  # the paper's Qwen
    SamplingParams(temperature=1.3, top_p=1.0, top_k=0, repetition_penalty=1.0, seed=2),
    SamplingParams(temperature=0.5, top_p=0.5, top_k=0, repetition_penalty=1.3, seed=3),
    SamplingParams(temperature=1.0, top_p=0.95, top_k=5, repetition_penalty=0.9, seed=4),
    SamplingParams(temperature=0.0, repetition_penalty=1.2, seed=5),  # greedy with a penalty
    SamplingParams(temperature=0.0, seed=6),
]
VOCAB = 40


def inputs():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(ROWS), VOCAB, generator=generator) * 3
    seen = torch.randint(0, VOCAB, (len(ROWS), 6), generator=generator)
    presence = torch.zeros(len(ROWS), VOCAB, dtype=torch.bool).scatter(1, seen, True)
    return logits, seen, presence


def reference(logits, seen, params: SamplingParams):
    """One row through transformers' own processors (one set of settings per call)."""
    scores = logits[None].clone()
    ids = seen[None]
    if params.repetition_penalty != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(params.repetition_penalty)(ids, scores)
    if params.temperature <= 0:
        return torch.nn.functional.one_hot(scores.argmax(-1), VOCAB).float()[0]
    scores = TemperatureLogitsWarper(params.temperature)(ids, scores)
    if params.top_k:
        scores = TopKLogitsWarper(params.top_k)(ids, scores)
    if params.top_p < 1.0:
        scores = TopPLogitsWarper(params.top_p)(ids, scores)
    return torch.softmax(scores, -1)[0]


def test_each_row_gets_its_own_settings_as_transformers_would_apply_them():
    logits, seen, presence = inputs()
    probs = distribution(logits, RowSettings.of(ROWS, "cpu"), presence)
    for row, params in enumerate(ROWS):
        assert torch.allclose(probs[row], reference(logits[row], seen[row], params), atol=1e-6), (
            params
        )


def test_greedy_rows_take_the_penalised_argmax():
    logits, seen, presence = inputs()
    chosen = choose(
        logits, RowSettings.of(ROWS, "cpu"), torch.zeros(len(ROWS), dtype=torch.long), presence
    )
    for row in (4, 5):
        assert int(chosen[row]) == int(reference(logits[row], seen[row], ROWS[row]).argmax())


def test_a_row_s_choice_does_not_depend_on_the_other_rows():
    logits, _, presence = inputs()
    counters = torch.arange(len(ROWS), dtype=torch.long) * 3
    together = choose(logits, RowSettings.of(ROWS, "cpu"), counters, presence)
    for row in range(len(ROWS)):
        alone = choose(logits[row : row + 1], RowSettings.of([ROWS[row]], "cpu"), counters[row : row + 1],
                       presence[row : row + 1])  # fmt: skip
        assert int(alone[0]) == int(together[row])
    order = list(reversed(range(len(ROWS))))
    shuffled = choose(
        logits[order],
        RowSettings.of([ROWS[i] for i in order], "cpu"),
        counters[order],
        presence[order],
    )
    assert shuffled.tolist() == together[order].tolist()


def test_samples_follow_the_distribution():
    logits, _, presence = inputs()
    params = [ROWS[1]] * 4000  # one row's settings, 4000 draws (counters 0..3999)
    settings = RowSettings.of(params, "cpu")
    draws = choose(
        logits[1:2].expand(4000, -1), settings, torch.arange(4000), presence[1:2].expand(4000, -1)
    )
    freq = torch.bincount(draws, minlength=VOCAB).float() / 4000
    expected = distribution(logits[1:2], RowSettings.of(ROWS[1:2], "cpu"))[0]
    assert (freq - expected).abs().max() < 0.03  # deterministic draws: this cannot flake


def test_only_allowed_tokens_are_chosen():
    logits, _, presence = inputs()
    allowed = torch.zeros(len(ROWS), VOCAB, dtype=torch.bool)
    allowed[:, [3, 17]] = True
    for counter in range(20):
        chosen = choose(
            logits,
            RowSettings.of(ROWS, "cpu"),
            torch.full((len(ROWS),), counter),
            presence,
            allowed,
        )
        assert set(chosen.tolist()) <= {3, 17}


def test_the_random_numbers_are_a_function_of_seed_and_counter():
    seeds = torch.tensor([1, 1, 2, -5, 2**62], dtype=torch.long)
    counters = torch.tensor([0, 1, 0, 7, 3], dtype=torch.long)
    u = uniforms(seeds, counters)
    assert torch.equal(u, uniforms(seeds, counters)) and ((u >= 0) & (u < 1)).all()
    assert len(set(u.tolist())) == 5
    many = uniforms(torch.zeros(10000, dtype=torch.long), torch.arange(10000))
    assert abs(float(many.mean()) - 0.5) < 0.01 and abs(float(many.var()) - 1 / 12) < 0.005
