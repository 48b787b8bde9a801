"""Choosing the next token for every row of a decode step at once.

``choose`` applies each row's own repetition penalty, temperature, top-k and
top-p as tensor operations over the whole batch (no Python loop over rows),
then picks greedily (temperature 0) or samples by inverse CDF.

The random number a sampled row uses is a counter-based hash of (its
request's seed, how many tokens it has generated), computed on the device as
integer tensor arithmetic (splitmix64). So a sampled answer depends only on
its seed and its logits, never on which rows it shares a batch with or in what
order they joined: there is no shared random stream to advance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from prose_sim.models.protocol import SamplingParams

if TYPE_CHECKING:  # torch is an optional dependency, imported where it is used
    from torch import Tensor

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 it has the same bits as."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(x, bits: int):
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x):
    """splitmix64's finaliser on an int64 tensor (multiplication wraps modulo 2**64)."""
    x = x + _GOLDEN
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


def uniforms(seeds, counters):
    """One uniform in [0, 1) per row, a pure function of (seed, counter): int64 tensors in, float64 out."""
    import torch

    bits = _splitmix64(_splitmix64(seeds) + counters)
    return _shift_right(bits, 11).to(torch.float64) * (1.0 / (1 << 53))


class RowSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Sampling settings of the rows of one step, as tensors on the logits' device."""

    temperature: Tensor  # float [B]
    top_k: Tensor  # int64 [B], 0 = no top-k
    top_p: Tensor  # float [B]
    penalty: Tensor  # float [B], 1 = none
    seeds: Tensor  # int64 [B]
    any_sampled: bool
    any_penalty: bool

    @classmethod
    def of(cls, params: Sequence[SamplingParams], device) -> RowSettings:
        import torch

        temperature = [max(0.0, float(p.temperature)) for p in params]
        penalty = [float(p.repetition_penalty) for p in params]
        return cls(
            temperature=torch.tensor(temperature, dtype=torch.float32, device=device),
            top_k=torch.tensor(
                [max(0, int(p.top_k)) for p in params], dtype=torch.long, device=device
            ),
            top_p=torch.tensor(
                [float(p.top_p) for p in params], dtype=torch.float32, device=device
            ),
            penalty=torch.tensor(penalty, dtype=torch.float32, device=device),
            seeds=torch.tensor(
                [_signed(int(p.seed)) for p in params], dtype=torch.long, device=device
            ),
            any_sampled=any(t > 0 for t in temperature),
            any_penalty=any(p != 1.0 for p in penalty),
        )


def _penalised(logits, settings: RowSettings, presence, allowed):
    import torch

    scores = logits.float()
    if settings.any_penalty and presence is not None:
        penalty = settings.penalty[:, None]
        penalised = torch.where(scores > 0, scores / penalty, scores * penalty)
        scores = torch.where(presence, penalised, scores)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores


def _truncated(scores, settings: RowSettings, rows):
    """Temperature, top-k and top-p on ``rows``: (log-weights [R, K] best first, their token ids [R, K])."""
    import torch

    vocab = scores.shape[-1]
    picked = scores.index_select(0, rows) / settings.temperature.index_select(0, rows)[:, None]
    k = settings.top_k.index_select(0, rows)
    k = torch.where(k <= 0, torch.full_like(k, vocab), k.clamp(max=vocab))
    widest = int(k.max())
    values, ids = torch.topk(picked, widest, dim=-1)  # sorted, largest first
    rank = torch.arange(widest, device=scores.device)[None, :]
    values = values.masked_fill(rank >= k[:, None], float("-inf"))  # top-k
    top_p = settings.top_p.index_select(0, rows)[:, None]
    probs = torch.softmax(values, -1)
    before = (
        probs.cumsum(-1) - probs
    )  # the mass of the better tokens (as transformers' TopPLogitsWarper)
    return values.masked_fill((before >= top_p) & (top_p < 1), float("-inf")), ids


def distribution(logits, settings: RowSettings, presence=None, allowed=None):
    """The probabilities each sampled row draws from, over the vocabulary ([B, V]; greedy rows: one-hot)."""
    import torch

    scores = _penalised(logits, settings, presence, allowed)
    out = torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1]).float()
    rows = (settings.temperature > 0).nonzero().squeeze(1)
    if rows.numel():
        values, ids = _truncated(scores, settings, rows)
        out[rows] = torch.zeros_like(out[rows]).scatter(1, ids, torch.softmax(values, -1))
    return out


def choose(logits, settings: RowSettings, counters, presence=None, allowed=None):
    """The next token of each row: a long tensor [B].

    ``logits``: float [B, V]; ``counters``: int64 [B], tokens each row has
    generated so far (the random stream's position); ``presence``: bool [B, V],
    the tokens each row has seen (prompt and output), for the repetition
    penalty; ``allowed``: optional bool [B, V], tokens a row may choose
    (constrained answers), ``None`` for no restriction.
    """
    import torch

    scores = _penalised(logits, settings, presence, allowed)
    chosen = scores.argmax(-1)
    if not settings.any_sampled:
        return chosen
    rows = (settings.temperature > 0).nonzero().squeeze(1)
    values, ids = _truncated(scores, settings, rows)
    cdf = torch.softmax(values, -1).double().cumsum(-1)
    u = uniforms(settings.seeds.index_select(0, rows), counters.index_select(0, rows))
    slot = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)
    # never a token without mass (float rounding at the top end of the CDF)
    slot = torch.minimum(slot, (torch.isfinite(values).sum(-1, keepdim=True) - 1).clamp(min=0))
    chosen[rows] = ids.gather(1, slot).squeeze(1)
    return chosen
