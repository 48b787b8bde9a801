"""The local engine's scheduling policy: which requests run in each iteration, and when they end.

``scheduler.Engine`` runs the forward passes and asks this module at every decision; nothing
here imports torch (``tests/test_scheduling_policy.py`` checks each rule without it). The rules:

- a request's token budget is its ``max_new_tokens``, bounded by the context left after its
  prompt (at least one token); a constrained answer gets room for its shortest complete form;
  an empty prompt, or one that fills the context, is refused;
- a request *reserves* its prompt plus its budget in KV tokens. A waiting request is admitted
  when the engine is idle (whatever it reserves: it runs alone), or when there is a row free
  under ``max_rows`` and every running row plus it, each at the longest reservation rounded up
  to ``LENGTH_STEP``, fits in ``max_kv_tokens``. Admission is first come, first served: a
  request that does not fit holds back the ones behind it;
- prefill: while some row is decoding, one iteration computes at most ``prefill_chunk`` prompt
  tokens in all (so a long prompt does not stall the running rows); when no row is decoding,
  every prompt that can be admitted is computed at once. Prompts begun in an earlier iteration
  go first, in their rows' order, then new requests are admitted; each prefill forward takes at
  most ``prefill_chunk`` tokens;
- a decode pass (one token for every running row) follows when some row's prompt is all in;
- a row ends when its constrained answer is complete (``shape``), at its token budget
  (``length``) or at the end of the context (``context``); an EOS token ends it first (the
  engine knows the model's EOS tokens).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prose_sim.errors import PromptTooLong
from prose_sim.models.protocol import SamplingParams

if TYPE_CHECKING:
    from prose_sim.models.answers import AnswerShape
    from prose_sim.models.backends.constrained import Constraint

LENGTH_STEP = 128  # reservations are compared in multiples of this (the KV storage's step)
SPARE_ROWS = 4  # rows allocated ahead of need when the storage grows (fewer reallocations)


@dataclass(eq=False)
class Sequence:
    """One request inside the engine."""

    prompt: list[int]
    params: SamplingParams
    key: object = None  # the caller's handle
    budget: int = 0  # new tokens allowed (max_new_tokens, bounded by the context)
    prefilled: int = 0  # prompt tokens in the KV cache
    cached: int = 0  # of those, taken from the prefix cache
    output: list[int] = field(default_factory=list)
    slot: int = -1
    finish: str = ""  # eos | length | context | shape (a constrained answer is complete)
    admitted_at: float = 0.0
    # the shape the answer must keep (None: free text), and the text it continues
    answer: AnswerShape | None = None
    answer_prefix: str = ""
    constraint: Constraint | None = None

    @property
    def decoding(self) -> bool:
        return self.prefilled == len(self.prompt)


def round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclass(frozen=True)
class Reservation:
    """The KV storage the running rows need after an admission: ``rows`` rows of ``length``
    tokens, with room for ``spare_rows`` rows allocated."""

    rows: int
    length: int
    spare_rows: int


@dataclass(frozen=True)
class SchedulingPolicy:
    max_rows: int
    max_kv_tokens: int
    prefill_chunk: int
    context: int  # the model's context, in tokens

    # ------------------------------------------------------------------ a request

    def check_prompt(self, prompt_tokens: int) -> None:
        """Refuse a prompt the model cannot answer (``PromptTooLong``)."""
        if not prompt_tokens:
            raise PromptTooLong("the prompt is empty")
        if prompt_tokens >= self.context:
            raise PromptTooLong(
                f"the prompt has {prompt_tokens} tokens; the model's context holds {self.context}"
            )

    def token_budget(
        self, prompt_tokens: int, max_new_tokens: int, fewest_answer_tokens: int | None = None
    ) -> int:
        """New tokens a request may generate; ``fewest_answer_tokens``: the shortest complete
        form of a constrained answer, which always gets room (within the context)."""
        left = self.context - prompt_tokens
        budget = max(1, min(int(max_new_tokens), left))
        if fewest_answer_tokens is not None:
            budget = max(budget, min(fewest_answer_tokens, left))
        return budget

    @staticmethod
    def reserved(seq: Sequence) -> int:
        """KV tokens a request can come to hold: its prompt and its whole budget."""
        return len(seq.prompt) + seq.budget

    # ------------------------------------------------------------------ admission

    def has_room(self, running: list[Sequence], seq: Sequence) -> bool:
        """Whether ``seq`` may join the running rows now."""
        if not running:
            return True
        if len(running) >= self.max_rows:
            return False
        length = round_up(
            max(self.reserved(seq), *(self.reserved(s) for s in running)), LENGTH_STEP
        )
        return (len(running) + 1) * length <= self.max_kv_tokens

    def reservation(self, rows: list[Sequence], allocated_rows: int) -> Reservation:
        """The storage for ``rows`` (the running rows with the one admitted), given the rows
        allocated now: a few spare rows ahead of need, within the row and KV limits."""
        count = len(rows)
        length = round_up(max(self.reserved(s) for s in rows), LENGTH_STEP)
        spare = min(
            self.max_rows,
            max(count, allocated_rows + SPARE_ROWS),
            max(count, self.max_kv_tokens // length),
        )
        return Reservation(rows=count, length=length, spare_rows=spare)

    # ------------------------------------------------------------------ one iteration

    def prefill_budget(self, running: list[Sequence]) -> float:
        """Prompt tokens this iteration may compute: a chunk while rows decode, else all."""
        return self.prefill_chunk if any(s.decoding for s in running) else float("inf")

    def chunk(self, seq: Sequence, left: float) -> int:
        """Prompt tokens of ``seq`` the next prefill forward computes, ``left`` of the
        iteration's budget."""
        return int(min(len(seq.prompt) - seq.prefilled, self.prefill_chunk, left))

    def iterate(
        self,
        running: list[Sequence],
        waiting: deque[Sequence],
        *,
        prefill: Callable[[Sequence, float], int],
        admit: Callable[[Sequence], None],
    ) -> bool:
        """One iteration's schedule: continue the prompts begun earlier, admit waiting requests
        while there is room and budget, each prefilled as it comes in. ``prefill(seq, budget)``
        computes up to ``budget`` prompt tokens and returns how many (a row may end in it, at its
        first token); ``admit(seq)`` gives ``seq`` a running row. Returns whether a decode pass
        follows."""
        budget = self.prefill_budget(running)
        for seq in [s for s in running if not s.decoding]:  # a prompt begun earlier
            budget -= prefill(seq, budget)
            if budget <= 0:
                break
        while budget > 0 and waiting and self.has_room(running, waiting[0]):
            seq = waiting.popleft()
            admit(seq)
            budget -= prefill(seq, budget)
        return any(s.decoding for s in running)

    # ------------------------------------------------------------------ a row's end

    def ending(self, seq: Sequence) -> str:
        """Why ``seq`` ends after the token it just took ("" when it goes on): its constrained
        answer is complete, its budget is spent, or the context is full."""
        if seq.constraint is not None and seq.constraint.done:
            return "shape"
        if len(seq.output) >= seq.budget:
            return "length"
        if len(seq.prompt) + len(seq.output) >= self.context:
            return "context"
        return ""
