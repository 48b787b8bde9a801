"""``bench local``: the local model server, side by side with its baselines, on two workloads.

Fixed workload (the same N chat prompts of varied length, decoded greedily to
the same number of new tokens, EOS ignored, one process, one dtype):

  (a) sequential: one ``model.generate`` call per request, one after another;
  (b) ideal batch: one ``model.generate`` call on all N, padded in advance;
  (c) server: N concurrent ``complete`` calls to prose_sim's LocalModelServer
      (iteration-level scheduling);
  (d) optional (``hf_cb``): transformers' own continuous batching,
      ``model.generate_batch`` (paged KV cache), on the same N prompts.

Each row (one per N) has generated tokens/s of each and the ratios c/a
(``ratio_vs_sequential``) and c/b (``ratio_vs_ideal_batch``). With
``sequential_sample`` K > 0, (a) is timed once, on the first K prompts, and
its rate is used for every N (a big N one at a time takes too long).

Trace workload (``local_trace.py``): the 150 requests of a real quickstart run
(prompt lengths, response prefixes, real answer lengths, each episode's
dependency chain) replayed closed-loop through the former static-batching
server (``static_server.py``) and the new one, alternately, ``trace_repeats``
times: generated tokens/s, p50 and p95 latency, padding and idle-row shares.

``python -m benchmarks local`` runs both on the embedded SmolLM2-135M on
the CPU; ``benchmarks/local_server.py`` is the command-line wrapper with every
knob (``--random-qwen7b`` builds Qwen2.5-7B's architecture with random weights
on a GPU, for ``benchmarks/gpu_server.sh``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

SENTENCES = [
    "The river rose nine feet overnight and rescuers worked until dawn.",
    "A new species of octopus that glows in two colours was found off the coast.",
    "The council voted to keep the old library open for another year.",
    "Researchers said walking after dinner lowered blood sugar in most volunteers.",
    "The striking train drivers asked for shorter shifts and safer cabs.",
    "Fans stormed the pitch after the part-time team won the cup tie.",
    "The appeals court ruled that the park could not be sold to a developer.",
    "Engineers recalled the earbuds after several charging cases overheated.",
]


# The suite's sizes: on 2 shared CPU cores the full suite takes about 25 minutes
# (SmolLM2-135M in float32, model load included).
class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What the suite measures: the fixed workload's sizes, then the trace replays."""

    sizes: tuple[int, ...]
    new_tokens: int
    sequential_sample: int
    warmup_rounds: int
    trace_episodes: int | None  # None: every episode of the trace
    trace_repeats: int


FULL = Plan(
    sizes=(1, 8, 32, 64),
    new_tokens=64,
    sequential_sample=4,
    warmup_rounds=1,
    trace_episodes=None,
    trace_repeats=1,
)
QUICK = Plan(
    sizes=(1, 8),
    new_tokens=8,
    sequential_sample=2,
    warmup_rounds=1,
    trace_episodes=1,
    trace_repeats=1,
)
CHECK_AT = 32  # the batch size of the headline checks (the largest measured when smaller)


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    """n chat prompts of varied length (about 30 to 170 tokens)."""
    prompts = []
    for i in range(n):
        k = 1 + (i * 5) % 12
        body = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(k))
        prompts.append([{"role": "user", "content": f"Summarize this in one sentence: {body}"}])
    return prompts


def qwen7b_random(device: str, dtype):
    """Qwen2.5-7B-Instruct's architecture with random weights, created on the device.

    ``PROSE_BENCH_TINY=1`` shrinks it to a toy of the same shape family, to check
    this code path without a GPU.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    tiny = os.environ.get("PROSE_BENCH_TINY") == "1"
    config = Qwen2Config(
        vocab_size=152064 if not tiny else 1000,
        hidden_size=3584 if not tiny else 64,
        intermediate_size=18944 if not tiny else 128,
        num_hidden_layers=28 if not tiny else 2,
        num_attention_heads=28 if not tiny else 4,
        num_key_value_heads=4 if not tiny else 2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,  # type: ignore[call-arg]  # transformers 5 takes it through **kwargs
        tie_word_embeddings=False,
    )
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    # a word-level tokenizer over a made-up vocabulary: ids are what matter here
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for word in " ".join([*SENTENCES, "Summarize this in one sentence: user assistant"]).split():
        vocab.setdefault(word, len(vocab))
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=inner, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    tokenizer.padding_side = "left"
    model.generation_config.eos_token_id = None
    return model, tokenizer


def load(
    model: str = "smollm2-135m-instruct",
    *,
    random_qwen7b: bool = False,
    device: str = "auto",
    dtype: str = "float32",
):
    """``(model, tokenizer, device, label)``: a prose_sim local model, or the random Qwen2.5-7B."""
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if random_qwen7b:
        device = device if device != "auto" else "cuda"
        built, tokenizer = qwen7b_random(device, dtypes[dtype if dtype != "auto" else "bfloat16"])
        return built, tokenizer, device, "Qwen2.5-7B architecture, random weights"
    from prose_sim.models.local_loading import load_local_model

    loaded, tokenizer, device, _ = load_local_model(model, dtype=dtype, device=device)
    return loaded, tokenizer, device, model


def encode_all(tokenizer, prompts) -> list[list[int]]:
    out = []
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        out.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return out


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def hf_generate(model, tokenizer, device, prompt_ids: list[list[int]], new_tokens: int) -> int:
    """One padded generate call; returns generated tokens (all rows decode new_tokens)."""
    import torch

    width = max(len(p) for p in prompt_ids)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
    synchronize(device)
    return (out.shape[1] - width) * len(prompt_ids)


def new_server(
    model,
    tokenizer,
    device,
    *,
    max_batch: int,
    static: bool = False,
    max_kv_tokens: int | None = None,
):
    """A fresh server on ``model`` that decodes every request to its budget (EOS ignored).

    ``max_kv_tokens`` None: the server's default KV budget (as in a run).
    """
    if static:
        from benchmarks.static_server import StaticBatchServer

        baseline = StaticBatchServer(
            model, tokenizer, device, name="bench", max_batch_size=max_batch, max_wait_s=0.02
        )
        baseline.generator.eos_ids = set()
        return baseline
    from prose_sim.models.backends.local import LocalModelServer

    server = LocalModelServer(model, tokenizer, device, name="bench", max_batch_size=max_batch, max_wait_s=0.02,
                              max_kv_tokens=max_kv_tokens)  # fmt: skip
    server.engine.eos_ids = set()
    return server


async def server_run(
    model, tokenizer, device, prompts, new_tokens: int, max_batch: int
) -> tuple[int, dict]:
    """N concurrent requests to a fresh LocalModelServer; (generated tokens, server stats)."""
    from prose_sim.models.protocol import ModelRequest, SamplingParams

    # room for every request at once, as the ideal batch has: the same work, side by side
    server = new_server(
        model, tokenizer, device, max_batch=max_batch, max_kv_tokens=max_batch * 512
    )
    total = 0
    async with server:

        async def one(i: int, messages) -> None:
            nonlocal total
            request = ModelRequest(
                role="agent",
                purpose="bench",
                episode_id="bench",
                instance=i,
                model="bench",
                messages=messages,
                params=SamplingParams(max_new_tokens=new_tokens),
            )
            done = await server.complete(request)
            total += done.output_tokens

        async with anyio.create_task_group() as tg:
            for i, messages in enumerate(prompts):
                tg.start_soon(one, i, messages)
    return total, server.stats.summary()


def hf_continuous(model, tokenizer, prompt_ids: list[list[int]], new_tokens: int) -> int:
    """transformers' continuous batching (``generate_batch``) on the prompts; returns generated tokens.

    Its paged KV cache is sized for this workload (it would otherwise take most
    of the free memory), and the model's attention implementation is restored
    afterwards (the manager switches it to a paged one).
    """
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    page = 256
    blocks = sum(-(-(len(p) + new_tokens) // page) for p in prompt_ids) + 4
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, eos_token_id=-1,
                              pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    attention = model.config._attn_implementation
    try:
        out = model.generate_batch(
            inputs=prompt_ids, generation_config=config, max_new_tokens=new_tokens, warmup=False,
            continuous_batching_config=ContinuousBatchingConfig(
                page_size=page, num_blocks=blocks, max_batch_tokens=512, auto_switch_to_flash=False),
        )  # fmt: skip
    finally:
        if model.config._attn_implementation != attention:
            model.set_attn_implementation(attention)
    return sum(len(o.generated_tokens) for o in out.values())


def copy_bandwidth(device: str) -> float | None:
    """Device-to-device copy bandwidth in bytes/s (read + write), or None on the CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    src = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    synchronize(device)
    return 2 * src.numel() * 10 / (time.perf_counter() - started)


def measure(
    model,
    tokenizer,
    device: str,
    sizes: Sequence[int],
    new_tokens: int,
    *,
    sequential_sample: int = 0,
    warmup_rounds: int = 2,
    hf_cb: bool = False,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """One row per N: tokens/s of (a), (b), (c) (and (d) with ``hf_cb``) and the ratios c/a and c/b."""
    say = log or (lambda _line: None)
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(device)
    if bandwidth:
        say(f"measured device copy bandwidth: {bandwidth / 1e12:.2f} TB/s (read + write)")
    # warm-up at full length: kernels, allocator and library heuristics settle first
    warm = encode_all(tokenizer, chat_prompts(4))
    for _ in range(warmup_rounds):
        hf_generate(model, tokenizer, device, warm[:1], new_tokens)
        hf_generate(model, tokenizer, device, warm, new_tokens)
        anyio.run(server_run, model, tokenizer, device, chat_prompts(1), new_tokens, 1)
        anyio.run(server_run, model, tokenizer, device, chat_prompts(4), new_tokens, 4)

    rows: list[dict[str, Any]] = []
    sequential_rate: float | None = None
    say(
        f"{'N':>5} {'(a) seq tok/s':>14} {'(b) batch tok/s':>16} {'(c) server tok/s':>17} {'c/a':>7} {'c/b':>6}"
    )
    for n in sizes:
        prompts = chat_prompts(n)
        ids = encode_all(tokenizer, prompts)
        if sequential_rate is None or not sequential_sample:
            # with a sample: its first K prompts (the same for every N), timed once
            sample = (
                encode_all(tokenizer, chat_prompts(sequential_sample)) if sequential_sample else ids
            )
            started, cpu = time.perf_counter(), time.process_time()
            tokens = sum(hf_generate(model, tokenizer, device, [p], new_tokens) for p in sample)
            sequential_rate = tokens / (time.perf_counter() - started)
            sequential_cpu_rate = tokens / (time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        tokens = hf_generate(model, tokenizer, device, ids, new_tokens)
        batch_rate = tokens / (time.perf_counter() - started)
        batch_cpu_rate = tokens / (time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        tokens, stats = anyio.run(
            server_run, model, tokenizer, device, prompts, new_tokens, max(sizes)
        )
        server_s = time.perf_counter() - started
        server_rate = tokens / server_s
        server_cpu_rate = tokens / (time.process_time() - cpu)
        row: dict[str, object] = {
            "n": n,
            "tokens_per_s_sequential": round(sequential_rate, 1),
            "tokens_per_s_ideal_batch": round(batch_rate, 1),
            "tokens_per_s_server": round(server_rate, 1),
            "ratio_vs_sequential": round(server_rate / sequential_rate, 3),
            "ratio_vs_ideal_batch": round(server_rate / batch_rate, 3),
            "server_mean_batch": stats["mean_batch"],
            "server_padding_share": stats["padding_share"],
            # tokens per CPU-second of this process (all its threads): far less sensitive than
            # wall time to other processes sharing the cores
            "cpu_ratio_vs_sequential": round(server_cpu_rate / sequential_cpu_rate, 3),
            "cpu_ratio_vs_ideal_batch": round(server_cpu_rate / batch_cpu_rate, 3),
        }
        if hf_cb:
            started = time.perf_counter()
            tokens = hf_continuous(model, tokenizer, ids, new_tokens)
            row["tokens_per_s_hf_continuous"] = round(tokens / (time.perf_counter() - started), 1)
        if bandwidth:
            # each decode step reads every weight once: compare with the copy bandwidth
            row["roofline_share"] = round(weights_bytes * stats["steps"] / server_s / bandwidth, 3)
        rows.append(row)
        line = (
            f"{n:>5} {sequential_rate:>14.1f} {batch_rate:>16.1f} {server_rate:>17.1f} "
            f"{row['ratio_vs_sequential']:>7.2f} {row['ratio_vs_ideal_batch']:>6.2f}  per CPU-s: "
            f"c/a {row['cpu_ratio_vs_sequential']:.2f} c/b {row['cpu_ratio_vs_ideal_batch']:.2f}"
        )
        if hf_cb:
            line += f"  hf generate_batch {row['tokens_per_s_hf_continuous']:.1f} tok/s"
        if "roofline_share" in row:
            line += f"  roofline {row['roofline_share']:.0%}"
        say(line)
    return rows


def measure_trace(
    model,
    tokenizer,
    device: str,
    *,
    episodes: int | None = None,
    repeats: int = 1,
    trace=None,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """The quickstart trace through the static server and the new one, alternately; one row per replay."""
    from benchmarks import local_trace

    say = log or (lambda _line: None)
    trace = trace or local_trace.load()
    rows: list[dict[str, Any]] = []
    for repeat in range(1, repeats + 1):
        for kind in ("static", "server"):
            server = new_server(model, tokenizer, device, max_batch=32, static=kind == "static")
            cpu = time.process_time()
            figures = anyio.run(
                functools.partial(local_trace.replay, server, trace, episodes=episodes)
            )
            cpu = time.process_time() - cpu
            stats = server.stats.summary()
            row = {
                "workload": f"trace {kind} #{repeat}",
                "n": figures["requests"],
                "tokens_per_s": figures["tokens_per_s"],
                "tokens_per_cpu_s": round(figures["generated_tokens"] / cpu, 2) if cpu > 0 else 0.0,
                "wall_s": figures["wall_s"],
                "latency_p50_s": figures["latency_p50_s"],
                "latency_p95_s": figures["latency_p95_s"],
                "padding_share": stats["padding_share"],
                "idle_row_share": stats["idle_row_share"],
                "server_mean_batch": stats["mean_batch"],
            }
            if kind == "server":
                row["kv_padding_share"] = stats["kv_padding_share"]
                row["prefix_hit_rate"] = stats["prefix_hit_rate"]
            rows.append(row)
            say(
                f"{row['workload']}: {figures['requests']} requests, {figures['tokens_per_s']} tok/s "
                f"({row['tokens_per_cpu_s']} per CPU-s), "
                f"p50 {figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s, wall {figures['wall_s']} s, "
                f"padding {stats['padding_share']}, idle rows {stats['idle_row_share']}"
            )
    return rows


def checks(rows: list[dict[str, Any]]):
    """The headline figures: the fixed workload at N=32 (or the largest N) and the trace replays."""
    from benchmarks.common import Check

    fixed = [r for r in rows if r.get("workload", "fixed") == "fixed"]
    out = []
    if fixed:
        at = [r for r in fixed if r["n"] == CHECK_AT] or [max(fixed, key=lambda r: r["n"])]
        row = at[0]
        n = row["n"]
        vs_seq, vs_ideal = float(row["ratio_vs_sequential"]), float(row["ratio_vs_ideal_batch"])
        out += [
            Check(name=f"server vs sequential at N={n}", measured=vs_seq, target=">= 5",
                  met=vs_seq >= 5 if n > 1 else None),
            Check(name=f"server vs ideal padded batch at N={n}", measured=vs_ideal, target=">= 0.9",
                  met=vs_ideal >= 0.9),
        ]  # fmt: skip
    static = [r for r in rows if str(r.get("workload", "")).startswith("trace static")]
    new = [r for r in rows if str(r.get("workload", "")).startswith("trace server")]
    if static and new:

        def mean(items, key):
            return sum(float(r[key]) for r in items) / len(items)

        speed = mean(new, "tokens_per_s") / mean(static, "tokens_per_s")
        spread = [
            round(float(b["tokens_per_s"]) / float(a["tokens_per_s"]), 2)
            for a, b in zip(static, new)
        ]
        out += [
            Check(name=f"trace: tokens/s, new / static (per repeat {spread})", measured=round(speed, 2),
                  target=">= 2", met=speed >= 2),
            Check(name="trace: padding share (new)", measured=mean(new, "padding_share"), target="< 0.1",
                  met=mean(new, "padding_share") < 0.1),
            Check(name="trace: idle-row share (new)", measured=mean(new, "idle_row_share"), target="< 0.1",
                  met=mean(new, "idle_row_share") < 0.1),
        ]  # fmt: skip
        for key in ("latency_p50_s", "latency_p95_s"):
            a, b = mean(static, key), mean(new, key)
            out.append(Check(name=f"trace: {key} new vs static ({a:.1f} s)", measured=round(b, 2),
                             target="lower", met=b < a))  # fmt: skip
    return out


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(
    quick: bool = False,
    *,
    model: str = "smollm2-135m-instruct",
    device: str = "cpu",
    dtype: str = "float32",
    log: Callable[[str], None] | None = _stderr,
):
    """The suite: SmolLM2-135M (embedded) on the CPU, one row per N (progress lines to stderr)."""
    import torch

    from benchmarks.common import SuiteResult

    plan = QUICK if quick else FULL
    torch.manual_seed(0)
    started = time.perf_counter()
    loaded, tokenizer, device, label = load(model, device=device, dtype=dtype)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = measure(
        loaded,
        tokenizer,
        device,
        plan.sizes,
        plan.new_tokens,
        sequential_sample=plan.sequential_sample,
        warmup_rounds=plan.warmup_rounds,
        log=log,
    )
    for row in rows:
        row["workload"] = "fixed"
    if plan.trace_repeats:
        rows += measure_trace(loaded, tokenizer, device, episodes=plan.trace_episodes,
                              repeats=plan.trace_repeats, log=log)  # fmt: skip
    measure_s = time.perf_counter() - started
    dtype_name = str(next(loaded.parameters()).dtype).removeprefix("torch.")
    threads = torch.get_num_threads()
    result = SuiteResult(
        suite="local",
        command="python -m benchmarks local" + (" --quick" if quick else ""),
        columns=[
            "workload",
            "n",
            "tokens_per_s_sequential",
            "tokens_per_s_ideal_batch",
            "tokens_per_s_server",
            "ratio_vs_sequential",
            "ratio_vs_ideal_batch",
            "server_mean_batch",
            "server_padding_share",
            "cpu_ratio_vs_sequential",
            "cpu_ratio_vs_ideal_batch",
            "tokens_per_s",
            "tokens_per_cpu_s",
            "latency_p50_s",
            "latency_p95_s",
            "padding_share",
            "idle_row_share",
            "kv_padding_share",
            "prefix_hit_rate",
        ],
        rows=rows,
        checks=checks(rows),
        notes=[
            (
                f"model {label} on {device}, {dtype_name}, torch threads {threads}; every request decodes exactly "
                f"{plan.new_tokens} new tokens greedily (EOS ignored) so (a), (b) and (c) do the same work"
            ),
            "(a) sequential: one `generate` per request, one after another"
            + (
                f", timed once on the first {plan.sequential_sample} prompts and used for every N"
                if plan.sequential_sample
                else ""
            )
            + "; (b) ideal batch: one padded `generate` on all N; (c) server: N concurrent `complete` calls "
            "to LocalModelServer (max_wait_s 0.02, max batch = the largest N)",
            (
                "ratio_vs_sequential = (c)/(a), ratio_vs_ideal_batch = (c)/(b); tokens/s are generated tokens per "
                "wall second; these machines are noisy, so only the ratios measured together here are compared"
            ),
            (
                "trace rows: the 150 requests of a real quickstart run (benchmarks/traces/quickstart.json.gz: "
                "prompts, response prefixes, real answer lengths, each episode's dependency chain) replayed closed-loop "
                "through the former static-batching server and the new one, alternately"
                + (f", first {plan.trace_episodes} episode(s) only" if plan.trace_episodes else "")
                + "; n = requests, tokens_per_s = generated tokens per wall second of the replay, latency per request"
            ),
            f"model load {load_s:.1f} s, measurement {measure_s:.1f} s (warm-up included)"
            + ("; --quick: a smoke test, not for the record" if quick else ""),
            (
                "GPU: `benchmarks/gpu_server.sh` (Qwen2.5-7B architecture, random weights) via "
                "`benchmarks/local_server.py --random-qwen7b`"
            ),
        ],
    )
    # machine() records torch.__version__, a str subclass msgspec cannot encode
    result.machine = {
        k: v if isinstance(v, (bool, int, float)) else str(v) for k, v in result.machine.items()
    }
    return result


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> None:
    """``benchmarks/local_server.py``: every knob, a printed table, and the rows as JSON with --json."""
    parser = argparse.ArgumentParser(
        description="Benchmark: the local model server against one-at-a-time and an ideal padded batch.",
        epilog="python benchmarks/local_server.py   # SmolLM2-135M on this CPU\n"
        "python benchmarks/local_server.py --random-qwen7b --n 1,16,64,256 --dtype bfloat16   # GPU check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--random-qwen7b", action="store_true", help="Qwen2.5-7B shape, random weights (GPU)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--n", default="1,8,32,64", help="concurrent requests, comma-separated")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument(
        "--sequential-sample",
        type=int,
        default=0,
        help="time (a) once, on this many requests, and use its rate for every N",
    )
    parser.add_argument("--warmup-rounds", type=int, default=2)
    parser.add_argument(
        "--hf-cb",
        action="store_true",
        help="also time transformers' continuous batching (generate_batch) at each N",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also replay the quickstart trace through the static and the new server",
    )
    parser.add_argument(
        "--trace-episodes", type=int, default=0, help="replay only the first K episodes (0: all)"
    )
    parser.add_argument("--trace-repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(0)
    model, tokenizer, device, label = load(
        args.model, random_qwen7b=args.random_qwen7b, device=args.device, dtype=args.dtype
    )
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    sizes = [int(x) for x in args.n.split(",") if x.strip()]
    print(
        f"model: {label}; device {device}; dtype {next(model.parameters()).dtype}; "
        f"{weights_bytes / 1e9:.2f} GB of weights; {args.new_tokens} new tokens per request",
        flush=True,
    )
    say = lambda line: print(line, flush=True)  # noqa: E731
    rows = (
        measure(
            model,
            tokenizer,
            device,
            sizes,
            args.new_tokens,
            sequential_sample=args.sequential_sample,
            warmup_rounds=args.warmup_rounds,
            hf_cb=args.hf_cb,
            log=say,
        )
        if sizes
        else []
    )
    if args.trace:
        rows += measure_trace(model, tokenizer, device, episodes=args.trace_episodes or None,
                              repeats=args.trace_repeats, log=say)  # fmt: skip
    for check in checks(rows):
        say(f"{check.name}: {check.measured} (target {check.target}, met: {check.met})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "model": label,
                    "device": device,
                    "dtype": str(next(model.parameters()).dtype),
                    "new_tokens": args.new_tokens,
                    "machine": platform.node(),
                    "date": time.strftime("%Y-%m-%d"),
                    "rows": rows,
                },
                indent=2,
            )
        )
