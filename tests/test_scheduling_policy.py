"""The local engine's scheduling policy, rule by rule, without torch (the engine that runs the
forward passes is tests/test_scheduler.py's)."""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from types import SimpleNamespace

import pytest

from prose_sim.errors import PromptTooLong
from prose_sim.models.backends.scheduling_policy import SchedulingPolicy, Sequence
from prose_sim.models.protocol import SamplingParams
from tests.conftest import ROOT


def policy(**kw) -> SchedulingPolicy:
    return SchedulingPolicy(
        **{"max_rows": 8, "max_kv_tokens": 8 * 1024, "prefill_chunk": 16, "context": 2048, **kw}
    )


def seq(prompt: int, budget: int = 10, *, prefilled: int = 0, output: int = 0) -> Sequence:
    return Sequence(
        prompt=[5] * prompt,
        params=SamplingParams(max_new_tokens=budget),
        budget=budget,
        prefilled=prefilled,
        output=[7] * output,
    )


def decoding(prompt: int, budget: int = 10) -> Sequence:
    return seq(prompt, budget, prefilled=prompt, output=1)


class Recorder:
    """The engine's side of an iteration: prefill computes what it is given (in forwards of the
    policy's chunks), admit adds a row; each call recorded."""

    def __init__(self, rules: SchedulingPolicy, running: list[Sequence]):
        self.rules, self.running = rules, running
        self.calls: list[tuple[str, int, float]] = []

    def prefill(self, s: Sequence, budget: float) -> int:
        used = 0
        while not s.decoding and used < budget:
            count = self.rules.chunk(s, budget - used)
            s.prefilled += count
            used += count
        self.calls.append(("prefill", len(s.prompt), used))
        return used

    def admit(self, s: Sequence) -> None:
        self.running.append(s)
        self.calls.append(("admit", len(s.prompt), 0))


def iterate(
    running: list[Sequence], waiting: list[Sequence], rules: SchedulingPolicy | None = None
) -> tuple[bool, Recorder]:
    """One iteration of ``rules`` (default ``policy()``); ``waiting`` keeps what is left."""
    rules = rules or policy()
    recorder = Recorder(rules, running)
    queue = deque(waiting)
    decode = rules.iterate(running, queue, prefill=recorder.prefill, admit=recorder.admit)
    waiting[:] = list(queue)
    return decode, recorder


# --- a request -------------------------------------------------------------------------


def test_an_empty_prompt_is_refused():
    with pytest.raises(PromptTooLong, match="the prompt is empty"):
        policy().check_prompt(0)


def test_a_prompt_that_fills_the_context_is_refused():
    with pytest.raises(PromptTooLong, match="2048 tokens; the model's context holds 2048"):
        policy().check_prompt(2048)
    policy().check_prompt(2047)  # one token left to answer in


def test_the_token_budget_is_max_new_tokens_bounded_by_the_context_left():
    assert policy().token_budget(100, 50) == 50
    assert policy().token_budget(2000, 500) == 48


def test_the_token_budget_is_at_least_one_token():
    assert policy().token_budget(100, 0) == 1


def test_a_constrained_answer_gets_room_for_its_shortest_complete_form_within_the_context():
    assert policy().token_budget(100, 5, fewest_answer_tokens=12) == 12
    assert policy().token_budget(100, 50, fewest_answer_tokens=12) == 50
    assert policy().token_budget(2040, 5, fewest_answer_tokens=12) == 8


def test_a_request_reserves_its_prompt_and_its_whole_budget():
    assert SchedulingPolicy.reserved(seq(100, 30)) == 130


# --- admission -------------------------------------------------------------------------


def test_an_idle_engine_admits_a_request_whatever_it_reserves():
    assert policy(max_kv_tokens=10).has_room([], seq(1000, 500))


def test_no_request_is_admitted_beyond_the_row_limit():
    running = [decoding(10) for _ in range(3)]
    assert policy(max_rows=4).has_room(running, seq(10))
    assert not policy(max_rows=3).has_room(running, seq(10))


def test_every_row_counts_at_the_longest_reservation_rounded_up_to_the_length_step():
    running = [decoding(10, 10)]  # reserves 20 tokens
    # two rows, each at the newcomer's 200 tokens rounded up to 256
    assert policy(max_kv_tokens=2 * 256).has_room(running, seq(150, 50))
    assert not policy(max_kv_tokens=2 * 256 - 1).has_room(running, seq(150, 50))


def test_the_storage_reserved_on_admission_keeps_a_few_spare_rows_within_the_limits():
    rows = [decoding(10, 10), seq(100, 20)]  # the longest reserves 120: rows of 128 tokens
    need = policy(max_rows=8, max_kv_tokens=64 * 128).reservation(rows, allocated_rows=1)
    assert (need.rows, need.length, need.spare_rows) == (2, 128, 5)  # 1 allocated + 4 spare
    assert policy(max_rows=3, max_kv_tokens=64 * 128).reservation(rows, 1).spare_rows == 3
    assert policy(max_rows=8, max_kv_tokens=3 * 128).reservation(rows, 1).spare_rows == 3
    assert policy(max_rows=8, max_kv_tokens=128).reservation(rows, 1).spare_rows == 2


# --- one iteration ---------------------------------------------------------------------


def test_with_no_row_decoding_every_waiting_prompt_is_prefilled_in_one_iteration():
    running: list[Sequence] = []
    waiting = [seq(40), seq(50), seq(60)]
    decode, _ = iterate(running, waiting)
    assert [s.decoding for s in running] == [True, True, True] and not waiting
    assert decode


def test_while_rows_decode_an_iteration_prefills_at_most_one_chunk_in_all():
    running = [decoding(10)]
    waiting = [seq(40), seq(5)]
    decode, recorder = iterate(running, waiting)
    assert [call for call in recorder.calls if call[0] == "prefill"] == [("prefill", 40, 16)]
    assert running[1].prefilled == 16 and [len(s.prompt) for s in waiting] == [5]
    assert decode  # the decoding row takes its next token


def test_prompts_begun_earlier_continue_before_new_requests_are_admitted():
    running = [decoding(10), seq(40, prefilled=16), seq(30, prefilled=10)]
    waiting = [seq(8)]
    _, recorder = iterate(running, waiting)
    assert recorder.calls == [("prefill", 40, 16)]  # the chunk is spent on the oldest prompt
    assert waiting and running[1].prefilled == 32 and running[2].prefilled == 10


def test_admission_is_first_come_first_served_a_request_that_does_not_fit_holds_back_the_rest():
    running = [decoding(10)]
    waiting = [seq(10), seq(500), seq(10)]
    iterate(running, waiting, policy(max_kv_tokens=3 * 128, prefill_chunk=64))
    assert [len(s.prompt) for s in running] == [10, 10]
    assert [len(s.prompt) for s in waiting] == [500, 10]


def test_one_prefill_forward_takes_at_most_a_chunk_and_what_is_left_of_the_budget():
    s = seq(100, prefilled=90)
    assert policy(prefill_chunk=16).chunk(s, float("inf")) == 10
    assert policy(prefill_chunk=16).chunk(seq(100), float("inf")) == 16
    assert policy(prefill_chunk=16).chunk(seq(100), 5) == 5


def test_a_decode_pass_follows_when_a_row_has_its_whole_prompt_in():
    assert iterate([decoding(10)], [])[0]
    assert iterate([], [seq(100)])[0]  # prefilled whole: nothing else was decoding


def test_no_decode_pass_follows_when_no_row_is_left_decoding():
    running: list[Sequence] = []

    def ends_at_its_first_token(s: Sequence, budget: float) -> int:
        s.prefilled = len(s.prompt)
        running.remove(s)  # EOS as the first token: the row leaves in its prefill
        return len(s.prompt)

    rules = policy()
    assert not rules.iterate(running, deque([seq(10)]), prefill=ends_at_its_first_token,
                             admit=running.append)  # fmt: skip
    assert not rules.iterate([], deque(), prefill=ends_at_its_first_token, admit=running.append)


# --- a row's end -----------------------------------------------------------------------


def test_a_row_goes_on_while_its_budget_and_the_context_last():
    assert policy().ending(decoding(10, budget=5)) == ""


def test_a_row_ends_at_its_token_budget():
    assert policy().ending(seq(10, 3, prefilled=10, output=3)) == "length"


def test_a_row_ends_at_the_end_of_the_context():
    assert policy(context=13).ending(seq(10, 50, prefilled=10, output=3)) == "context"


def test_a_constrained_row_ends_when_its_answer_is_complete_before_any_other_reason():
    row = seq(10, 3, prefilled=10, output=3)
    row.constraint = SimpleNamespace(done=True)  # type: ignore[assignment]
    assert policy().ending(row) == "shape"
    row.constraint = SimpleNamespace(done=False)  # type: ignore[assignment]
    assert policy().ending(row) == "length"


def test_the_policy_imports_no_torch():
    code = (
        "import sys\n"
        "import prose_sim.models.backends.scheduling_policy\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"
