"""Static batched generation for a causal LM: one padded batch, one decode loop.

The former local server's generator, kept as the baseline that ``bench local``
measures the iteration-level scheduler (``prose_sim/models/backends/scheduler.py``) against.

``BatchGenerator.run`` takes several tokenized prompts with their own sampling
settings and decodes them together: left-padded prefill, then one forward pass
per step over the whole batch with a KV cache. Each row keeps its own
temperature, top-k, top-p, repetition penalty, token budget and random
generator (seeded per request), and stops at EOS or its budget; finished rows
are padding until the longest is done.

We write the loop ourselves rather than call ``model.generate`` because
``generate`` takes one set of sampling settings and one random stream per
batch, and requests from different episodes need their own.
"""

from __future__ import annotations

import time

from prose_sim.events import BatchStats
from prose_sim.models.protocol import SamplingParams


class BatchGenerator:
    def __init__(self, model, tokenizer, device: str):
        import torch

        self.torch = torch
        self.model = model
        self.device = device
        self.pad_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        # transformers renamed the KV-cache argument (past_key_values -> cache) in 5.x
        import inspect

        # (rows, decode steps done, longest token budget, perf_counter at its start) of the
        # batch in flight, rows 0 when idle: written by the worker thread, read by the progress display
        self.live: tuple[int, int, int, float] = (0, 0, 0, 0.0)
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )

    def run(
        self, prompts: list[list[int]], params: list[SamplingParams]
    ) -> tuple[list[list[int]], BatchStats]:
        torch = self.torch
        started = time.perf_counter()
        batch = len(prompts)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention[row, width - len(prompt) :] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator().manual_seed(int(p.seed)) for p in params]
        seen = [set(prompt) for prompt in prompts]  # for the repetition penalty
        outputs: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        budget = [max(1, p.max_new_tokens) for p in params]
        idle = steps = 0
        self.live = (batch, 0, max(budget), started)
        with torch.inference_mode(), self._attention_kernels():
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
            )
            last_positions = positions[:, -1:]
            while True:
                logits = out.logits[:, -1, :].float()
                chosen = self._choose(logits, params, generators, seen, done)
                steps += 1
                self.live = (batch, steps, self.live[2], started)
                for row in range(batch):
                    if done[row]:
                        idle += 1
                        continue
                    token = chosen[row]
                    if token in self.eos_ids:
                        done[row] = True
                        continue
                    outputs[row].append(token)
                    seen[row].add(token)
                    if len(outputs[row]) >= budget[row]:
                        done[row] = True
                if all(done):
                    break
                next_ids = torch.tensor(
                    [[self.pad_id if done[r] else chosen[r]] for r in range(batch)],
                    dtype=torch.long,
                    device=self.device,
                )
                attention = torch.cat(
                    [attention, torch.ones((batch, 1), dtype=torch.long, device=self.device)], 1
                )
                last_positions = last_positions + 1
                out = self.model(
                    input_ids=next_ids,
                    attention_mask=attention,
                    position_ids=last_positions,
                    use_cache=True,
                    **{self._cache_arg: getattr(out, self._cache_arg)},
                )
        self.live = (0, 0, 0, 0.0)
        stats = BatchStats(
            size=batch,
            prompt_tokens=sum(len(p) for p in prompts),
            padded_tokens=batch * width - sum(len(p) for p in prompts),
            generated_tokens=sum(len(o) for o in outputs),
            steps=steps,
            idle_row_steps=idle,
            wall_s=time.perf_counter() - started,
        )
        return outputs, stats

    def _attention_kernels(self):
        """On CUDA, attention kernels that need no per-shape setup.

        The KV length grows every decode step; cuDNN attention builds a plan
        per new shape and per thread, which made decoding in the server's
        worker thread 3x slower than on the main thread (measured on an H100).
        """
        import contextlib

        if not str(self.device).startswith("cuda"):
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(
            [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
        )

    def _choose(self, logits, params, generators, seen, done) -> list[int]:
        """Next token per row: greedy where temperature is 0, else sampled with its own generator."""
        torch = self.torch
        greedy = logits.argmax(-1).tolist()
        chosen = list(greedy)
        for row, p in enumerate(params):
            if done[row]:
                continue
            needs_penalty = p.repetition_penalty != 1.0 and seen[row]
            if p.temperature <= 0 and not needs_penalty:
                continue
            scores = logits[row].clone()
            if needs_penalty:
                ids = torch.tensor(sorted(seen[row]), dtype=torch.long, device=scores.device)
                picked = scores[ids]
                scores[ids] = torch.where(
                    picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty
                )
            if p.temperature <= 0:
                chosen[row] = int(scores.argmax())
                continue
            scores = scores / p.temperature
            if p.top_k and p.top_k > 0:
                kth = torch.topk(scores, min(p.top_k, scores.numel())).values[-1]
                scores[scores < kth] = float("-inf")
            if p.top_p < 1.0:
                ordered, order = torch.sort(scores, descending=True)
                cumulative = torch.softmax(ordered, -1).cumsum(-1)
                drop = (
                    cumulative - torch.softmax(ordered, -1) > p.top_p
                )  # keep the first token past top_p
                scores[order[drop]] = float("-inf")
            probs = torch.softmax(scores, -1).cpu()
            chosen[row] = int(torch.multinomial(probs, 1, generator=generators[row]))
        return chosen
