"""Iteration-level scheduling of many generation requests on one causal LM.

``Engine.step`` is one scheduler iteration, as in vLLM and SGLang:

1. prefill: rows whose prompt is not yet in the KV cache get up to
   ``prefill_chunk`` prompt tokens computed this iteration (a long prompt is
   split over several iterations, so it does not stall the running rows; when
   no row is decoding, every waiting prompt is prefilled at once). Each prompt
   is computed on its own, at its exact length: no padding. A prompt's start
   may come from the prefix cache instead (``prefix_cache.py``);
2. waiting requests are admitted while there is room (rows, KV tokens);
3. decode: one forward pass over every running row, one token each, each row
   at its own position in its own KV slot (``kv_slots.py``); the next tokens
   are chosen for all rows at once (``sampling.py``);
4. rows that produced EOS or reached their budget leave at once and are
   returned, so their slot is free for the next iteration.

Which rows are admitted, how much is prefilled, when a decode pass follows and when
a row ends is the scheduling policy (``scheduling_policy.py``, no torch): the engine
asks it and runs the forward passes. The engine is synchronous and owns no threads:
``local.py`` drives it from one worker thread and hands answers back to the event loop.
"""

from __future__ import annotations

import inspect
import time
from collections import deque

import msgspec

from prose_sim.errors import PromptTooLong
from prose_sim.models.backends.constrained import Constraint, TokenTable
from prose_sim.models.backends.cpu_memory import return_freed_memory
from prose_sim.models.backends.kv_slots import SlotCache
from prose_sim.models.backends.prefix_cache import PrefixCache
from prose_sim.models.backends.sampling import RowSettings, choose
from prose_sim.models.backends.scheduling_policy import SchedulingPolicy, Sequence

__all__ = ["KV_BYTES_CPU", "Engine", "EngineStats", "PromptTooLong", "Sequence"]

# the default KV budget off CUDA (SmolLM2-135M in float32: 4,369 tokens), kept small so that
# the quickstart fits in 1.5 GB (docs/performance.md)
KV_BYTES_CPU = 192 * 2**20


class EngineStats(msgspec.Struct, kw_only=True):
    """Running totals of one engine (all counts in tokens unless named otherwise)."""

    admitted: int = 0  # requests admitted into a slot
    finished: int = 0  # requests answered (EOS, budget or context end)
    dropped: int = 0  # requests removed before their end (caller gave up)
    dropped_tokens: int = 0  # tokens those had generated
    prompt_tokens: int = 0  # prompt tokens of the admitted requests
    prefill_tokens: int = 0  # of those, computed (the rest came from the prefix cache)
    cached_tokens: int = 0
    prefill_forwards: int = 0
    generated_tokens: int = 0
    steps: int = 0  # decode forwards
    row_steps: int = 0  # rows in them
    idle_row_steps: int = 0  # rows in them that were not decoding (a prompt half prefilled)
    kv_positions: int = 0  # key positions the decode steps' attention covered
    kv_padding: int = 0  # of those, masked (another row was longer)
    max_rows: int = 0
    peak_kv_tokens: int = 0  # allocated KV storage, rows x length
    busy_s: float = 0.0


class Engine:
    def __init__(
        self,
        model,
        tokenizer,
        device: str,
        *,
        max_rows: int = 32,
        max_kv_tokens: int | None = None,
        prefill_chunk: int = 256,
        prefix_cache_tokens: int = 1024,
        prefix_block: int = 32,
    ):
        import torch

        self.torch = torch
        self.model = model
        self.device = device
        config = (
            model.config.get_text_config()
            if hasattr(model.config, "get_text_config")
            else model.config
        )
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        context = int(getattr(config, "max_position_embeddings", 0) or 1 << 30)
        self.vocab = int(model.get_output_embeddings().weight.shape[0])
        if not str(device).startswith("cuda"):
            return_freed_memory()  # reallocated KV storage goes back to the system
        self.cache = SlotCache(
            layers=config.num_hidden_layers,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            dtype=next(model.parameters()).dtype,
            device=device,
        )
        self.policy = SchedulingPolicy(
            max_rows=max(1, max_rows),
            max_kv_tokens=max(1, max_kv_tokens or self._default_kv_tokens()),
            prefill_chunk=max(1, prefill_chunk),
            context=context,
        )
        self.prefix = PrefixCache(max_tokens=prefix_cache_tokens, block=prefix_block)
        self.pad_id = (
            tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id or 0
        )
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # index = slot
        # bool [allocated rows, vocab]: the tokens each row has seen
        self.presence = torch.zeros((0, self.vocab), dtype=torch.bool, device=device)
        self.stats = EngineStats()
        self._settings: RowSettings | None = None  # of the running rows, rebuilt when they change
        self._tokenizer = tokenizer
        self._tokens: TokenTable | None = None  # built for the first constrained answer

    @property
    def max_rows(self) -> int:
        return self.policy.max_rows

    @property
    def max_kv_tokens(self) -> int:
        return self.policy.max_kv_tokens

    @property
    def prefill_chunk(self) -> int:
        return self.policy.prefill_chunk

    @property
    def context(self) -> int:
        return self.policy.context

    def _default_kv_tokens(self) -> int:
        """KV storage for the running rows: half the free GPU memory on CUDA, 192 MiB elsewhere."""
        budget = KV_BYTES_CPU
        if str(self.device).startswith("cuda"):
            free, _ = self.torch.cuda.mem_get_info(self.torch.device(self.device))
            budget = free // 2
        return max(1, budget // self.cache.token_bytes())

    # ------------------------------------------------------------------ requests

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def submit(self, seq: Sequence) -> None:
        """Queue a request; it is admitted at the next iteration that has room."""
        self.policy.check_prompt(len(seq.prompt))
        fewest = None
        if seq.answer is not None:
            if self._tokens is None:
                self._tokens = TokenTable(self._tokenizer, self.vocab, self.device, self.eos_ids)
            seq.constraint = Constraint.start(seq.answer, self._tokens, seq.answer_prefix)
            fewest = seq.constraint.fewest_tokens()
        seq.budget = self.policy.token_budget(len(seq.prompt), seq.params.max_new_tokens, fewest)
        self.waiting.append(seq)

    def drop(self, seq: Sequence) -> None:
        """Remove a request that is no longer wanted, wherever it is; its slot is free at once."""
        if seq.slot >= 0:
            self.stats.dropped += 1
            self.stats.dropped_tokens += len(seq.output)
            with self.torch.inference_mode():  # the KV storage was made in inference mode
                self._leave(seq)
        else:
            try:
                self.waiting.remove(seq)
            except ValueError:
                return
            self.stats.dropped += 1

    def release(self) -> None:
        """Free the KV storage (the next admission allocates it again); only when nothing runs."""
        assert not self.running, "release() with rows running"
        self.cache.clear()
        self.presence = self.torch.zeros((0, self.vocab), dtype=self.torch.bool, device=self.device)

    def reset(self) -> list[Sequence]:
        """Forget every request (after a failed step) and free the KV storage; returns them."""
        lost = list(self.running) + list(self.waiting)
        for seq in lost:
            seq.slot = -1
        self.running.clear()
        self.waiting.clear()
        self.release()
        self._settings = None
        return lost

    # ------------------------------------------------------------------ one iteration

    def step(self) -> list[Sequence]:
        """One scheduler iteration; returns the requests that finished in it."""
        started = time.perf_counter()
        finished: list[Sequence] = []
        with self.torch.inference_mode():
            decode = self.policy.iterate(
                self.running,
                self.waiting,
                prefill=lambda seq, budget: self._prefill(seq, budget, finished),
                admit=self._admit,
            )
            if decode:
                self._decode(finished)
        self.stats.busy_s += time.perf_counter() - started
        return finished

    def _admit(self, seq: Sequence) -> None:
        torch = self.torch
        need = self.policy.reservation([*self.running, seq], self.cache.rows)
        self.cache.reserve(need.rows, need.length, spare_rows=need.spare_rows)
        if self.presence.shape[0] < self.cache.rows:
            grown = torch.zeros((self.cache.rows, self.vocab), dtype=torch.bool, device=self.device)
            grown[: self.presence.shape[0]] = self.presence
            self.presence = grown
        seq.slot = self.cache.add()
        self.running.append(seq)
        self._settings = None
        seq.admitted_at = time.perf_counter()
        self.presence[seq.slot] = False
        self.presence[
            seq.slot, torch.tensor(seq.prompt, device=self.device).clamp(max=self.vocab - 1)
        ] = True
        hit, kv = self.prefix.lookup(seq.prompt)
        if hit:
            self.cache.write(seq.slot, 0, kv)
            seq.prefilled = seq.cached = hit
        self.stats.admitted += 1
        self.stats.prompt_tokens += len(seq.prompt)
        self.stats.cached_tokens += hit
        self.stats.max_rows = max(self.stats.max_rows, len(self.running))
        self.stats.peak_kv_tokens = max(self.stats.peak_kv_tokens, self.cache.allocated_tokens)

    def _forward(self, input_ids, positions, mask, **extra):
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: self.cache},
            **extra,
        )
        self.cache.after_forward()
        return out.logits[:, -1, :]

    def _prefill(self, seq: Sequence, budget: float, finished: list[Sequence]) -> int:
        """Compute up to ``budget`` more prompt tokens of ``seq``; returns how many."""
        torch = self.torch
        used = 0
        while not seq.decoding and used < budget:
            start = seq.prefilled
            count = self.policy.chunk(seq, budget - used)
            ids = torch.tensor(
                [seq.prompt[start : start + count]], dtype=torch.long, device=self.device
            )
            positions = torch.arange(start, start + count, device=self.device)[None, :]
            self.cache.for_prefill(seq.slot, start, count)
            logits = self._forward(
                ids, positions, self.cache.prefill_mask(start, count), logits_to_keep=1
            )
            seq.prefilled += count
            used += count
            self.stats.prefill_forwards += 1
            self.stats.prefill_tokens += count
        if (
            seq.decoding and not seq.output
        ):  # the prompt is in: its last logits give the first token
            settings = RowSettings.of([seq.params], self.device)
            token = choose(logits, settings, torch.zeros(1, dtype=torch.long, device=self.device),
                           self.presence[seq.slot : seq.slot + 1], self._allowed([seq]))  # fmt: skip
            slot = seq.slot
            self.prefix.store(seq.prompt, lambda a, b: self.cache.read(slot, a, b))
            self._take(seq, int(token[0]), finished)
        return used

    def _decode(self, finished: list[Sequence]) -> None:
        torch = self.torch
        rows = self.running
        n = len(rows)
        ids = torch.tensor(
            [[s.output[-1] if s.decoding else self.pad_id] for s in rows], device=self.device
        )
        lengths = self.cache.lengths
        positions = torch.tensor(lengths, dtype=torch.long, device=self.device)
        width = max(lengths) + 1
        self.cache.for_decode(positions)
        logits = self._forward(ids, positions[:, None], self.cache.decode_mask())
        if self._settings is None:
            self._settings = RowSettings.of([s.params for s in rows], self.device)
        counters = torch.tensor([len(s.output) for s in rows], dtype=torch.long, device=self.device)
        tokens = choose(logits, self._settings, counters, self.presence[:n], self._allowed(rows))
        decoding = [s.decoding for s in rows]
        self.presence[torch.arange(n, device=self.device), tokens] |= torch.tensor(
            decoding, device=self.device
        )
        idle = decoding.count(False)
        self.stats.steps += 1
        self.stats.row_steps += n
        self.stats.idle_row_steps += idle
        self.stats.kv_positions += n * width
        self.stats.kv_padding += sum(width - length - 1 for length in lengths)
        for seq, token in zip(list(rows), tokens.tolist()):
            if seq.decoding:
                self._take(seq, token, finished)

    def _allowed(self, rows: list[Sequence]):
        """Bool [rows, vocab]: the tokens each row may choose; None when no row is constrained."""
        if all(seq.constraint is None for seq in rows):
            return None
        allowed = self.torch.ones(
            (len(rows), self.vocab), dtype=self.torch.bool, device=self.device
        )
        for i, seq in enumerate(rows):
            if seq.constraint is not None and seq.decoding:
                allowed[i] = seq.constraint.allowed(seq.budget - len(seq.output))
        return allowed

    def _take(self, seq: Sequence, token: int, finished: list[Sequence]) -> None:
        """Record ``seq``'s next token; it leaves when the token ends it."""
        if token in self.eos_ids:
            seq.finish = "eos"
        else:
            seq.output.append(token)
            self.stats.generated_tokens += 1
            if seq.constraint is not None:
                seq.constraint.advance(token)
            seq.finish = self.policy.ending(seq)
        if seq.finish:
            self.stats.finished += 1
            self._leave(seq)
            finished.append(seq)

    def _leave(self, seq: Sequence) -> None:
        slot = seq.slot
        moved = self.cache.remove(slot)
        last = self.running.pop()
        if moved is not None:
            self.running[slot] = last
            last.slot = slot
            self.presence[slot] = self.presence[moved]
        seq.slot = -1
        self._settings = None
