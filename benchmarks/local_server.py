"""Benchmark: the local model server against one-at-a-time and an ideal padded batch.

For each N, the same N chat prompts (varied lengths) are decoded greedily to
the same number of new tokens, in one process, same dtype throughout:

  (a) sequential: one ``model.generate`` call per request, one after another;
  (b) ideal batch: one ``model.generate`` call on all N, padded in advance;
  (c) server: N concurrent ``complete`` calls to prose_sim's LocalModelServer.

It prints generated tokens/s for each and the ratios c/a and c/b, and writes
JSON (one row per N: n, tokens_per_s_*, ratio_vs_sequential,
ratio_vs_ideal_batch) with --json.

    python benchmarks/local_server.py                     # SmolLM2-135M on this CPU
    python benchmarks/local_server.py --random-qwen7b --n 1,16,64,256 --dtype bfloat16   # GPU check

EOS is ignored (every request decodes exactly --new-tokens) so all three do
the same work. With --sequential-sample K only K requests are timed for (a)
and its rate is used for every N (a big N one at a time takes too long).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio  # noqa: E402

from prose_sim.models.backends.local import LocalModelServer  # noqa: E402
from prose_sim.models.protocol import ModelRequest, SamplingParams  # noqa: E402

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


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    """n chat prompts of varied length (about 30 to 170 tokens)."""
    prompts = []
    for i in range(n):
        k = 1 + (i * 5) % 12
        body = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(k))
        prompts.append([{"role": "user", "content": f"Summarize this in one sentence: {body}"}])
    return prompts


def qwen7b_random(device: str, dtype):
    """Qwen2.5-7B-Instruct's architecture with random weights, created on the device."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config
    from tokenizers import Tokenizer, models, pre_tokenizers

    tiny = os.environ.get("PROSE_BENCH_TINY") == "1"  # to check this script without a GPU
    config = Qwen2Config(
        vocab_size=152064 if not tiny else 1000,
        hidden_size=3584 if not tiny else 64,
        intermediate_size=18944 if not tiny else 128,
        num_hidden_layers=28 if not tiny else 2,
        num_attention_heads=28 if not tiny else 4,
        num_key_value_heads=4 if not tiny else 2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=False,
    )
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    # a word-level tokenizer over a made-up vocabulary: ids are what matter here
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for word in " ".join(SENTENCES + ["Summarize this in one sentence: user assistant"]).split():
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


def load(args):
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if args.random_qwen7b:
        device = args.device if args.device != "auto" else "cuda"
        model, tokenizer = qwen7b_random(device, dtype[args.dtype if args.dtype != "auto" else "bfloat16"])
        return model, tokenizer, device, "Qwen2.5-7B architecture, random weights"
    from prose_sim.models.local_loading import load_local_model

    model, tokenizer, device, _ = load_local_model(args.model, dtype=args.dtype, device=args.device)
    return model, tokenizer, device, args.model


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


async def server_run(model, tokenizer, device, prompts, new_tokens: int, max_batch: int) -> tuple[int, dict]:
    server = LocalModelServer(model, tokenizer, device, name="bench", max_batch_size=max_batch, max_wait_s=0.02)
    server.generator.eos_ids = set()  # decode exactly new_tokens, like (a) and (b)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--random-qwen7b", action="store_true", help="Qwen2.5-7B shape, random weights (GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--n", default="1,8,32,64", help="concurrent requests, comma-separated")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--sequential-sample", type=int, default=0, help="time (a) on this many requests only")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    model, tokenizer, device, label = load(args)
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(device)
    sizes = [int(x) for x in args.n.split(",")]
    print(f"model: {label}; device {device}; dtype {next(model.parameters()).dtype}; "
          f"{weights_bytes / 1e9:.2f} GB of weights; {args.new_tokens} new tokens per request")
    if bandwidth:
        print(f"measured device copy bandwidth: {bandwidth / 1e12:.2f} TB/s (read + write)")
    # warm-up at full length: kernels, allocator and library heuristics settle first
    warm = encode_all(tokenizer, chat_prompts(4))
    for _ in range(2):
        hf_generate(model, tokenizer, device, warm[:1], args.new_tokens)
        hf_generate(model, tokenizer, device, warm, args.new_tokens)
        anyio.run(server_run, model, tokenizer, device, chat_prompts(1), args.new_tokens, 1)
        anyio.run(server_run, model, tokenizer, device, chat_prompts(4), args.new_tokens, 4)

    rows = []
    sequential_rate = None
    header = f"{'N':>5} {'(a) seq tok/s':>14} {'(b) batch tok/s':>16} {'(c) server tok/s':>17} {'c/a':>7} {'c/b':>6}"
    print(header)
    for n in sizes:
        prompts = chat_prompts(n)
        ids = encode_all(tokenizer, prompts)
        if sequential_rate is None or not args.sequential_sample:
            sample = ids[: args.sequential_sample] if args.sequential_sample else ids
            started = time.perf_counter()
            tokens = sum(hf_generate(model, tokenizer, device, [p], args.new_tokens) for p in sample)
            sequential_rate = tokens / (time.perf_counter() - started)
        started = time.perf_counter()
        tokens = hf_generate(model, tokenizer, device, ids, args.new_tokens)
        batch_rate = tokens / (time.perf_counter() - started)
        started = time.perf_counter()
        tokens, stats = anyio.run(server_run, model, tokenizer, device, prompts, args.new_tokens, max(sizes))
        server_s = time.perf_counter() - started
        server_rate = tokens / server_s
        row = {
            "n": n,
            "tokens_per_s_sequential": round(sequential_rate, 1),
            "tokens_per_s_ideal_batch": round(batch_rate, 1),
            "tokens_per_s_server": round(server_rate, 1),
            "ratio_vs_sequential": round(server_rate / sequential_rate, 3),
            "ratio_vs_ideal_batch": round(server_rate / batch_rate, 3),
            "server_batches": stats["batches"],
            "server_padding_share": stats["padding_share"],
        }
        if bandwidth:
            # each decode step reads every weight once: compare with the copy bandwidth
            row["roofline_share"] = round(weights_bytes * stats["steps"] / server_s / bandwidth, 3)
        rows.append(row)
        line = (f"{n:>5} {sequential_rate:>14.1f} {batch_rate:>16.1f} {server_rate:>17.1f} "
                f"{row['ratio_vs_sequential']:>7.2f} {row['ratio_vs_ideal_batch']:>6.2f}")
        if "roofline_share" in row:
            line += f"  roofline {row['roofline_share']:.0%}"
        print(line, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "model": label, "device": device, "dtype": str(next(model.parameters()).dtype),
            "new_tokens": args.new_tokens, "machine": platform.node(), "date": time.strftime("%Y-%m-%d"),
            "rows": rows,
        }, indent=2))


if __name__ == "__main__":
    main()
