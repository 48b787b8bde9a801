"""Where the quickstart's memory goes: resident memory at each stage of one run.

tracemalloc does not see torch's allocations, so this reads the kernel's own
figures (``/proc/self/status``: VmRSS now, VmHWM the peak so far) after each
stage in one process, and samples VmRSS every 0.2 s during the run, with the
local server's KV storage and prefix cache beside it:

    python benchmarks/memory_profile.py [--scenario scenarios/quickstart.toml] [--json out.json]

Stages: the imports; the local model loaded (its transient load peak shows in
VmHWM); the run (every model it loads, the server's KV storage, the metrics).
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import threading
import time
from pathlib import Path


def status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/quickstart.toml")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-load", action="store_true", help="no separate model-load stage")
    args = parser.parse_args(argv)
    stages: list[dict[str, object]] = []

    def mark(name: str, **extra: object) -> None:
        row = {"stage": name, **status(), **extra}
        stages.append(row)
        print(json.dumps(row), flush=True)

    mark("python")
    import anyio
    import msgspec
    import torch  # noqa: F401

    from prose_sim.config import RunOptions
    from prose_sim.runtime.prepare import prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import load_scenario

    mark("imports (torch, transformers, prose_sim)")
    if not args.skip_load:
        from prose_sim.models.local_loading import load_local_model

        model, *_ = load_local_model("smollm2-135m-instruct", dtype="float32", device="cpu")
        weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
        mark("model loaded", weights_mb=round(weights, 1))
        del model
        gc.collect()
        mark("model freed")

    samples: list[tuple[float, float, int, int]] = []  # (t, rss MB, KV tokens, prefix tokens)
    servers: list = []
    stop = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not stop.wait(0.2):
            kv = sum(s.engine.cache.allocated_tokens for s in servers)
            prefix = sum(s.engine.prefix.tokens for s in servers)
            samples.append((time.perf_counter() - started, status()["VmRSS"], kv, prefix))

    import prose_sim.models.kinds.local as local_kind

    real = local_kind._server

    timed = {"prefill_s": 0.0, "decode_s": 0.0}

    def timer(method, name):  # the engine's time split between prompts and decode steps
        def wrapped(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                timed[name] += time.perf_counter() - began

        return wrapped

    def watched(spec, name):  # the servers the run builds, for the sampler to read
        server = real(spec, name)
        servers.append(server)
        server.engine._prefill = timer(server.engine._prefill, "prefill_s")
        server.engine._decode = timer(server.engine._decode, "decode_s")
        mark("local server built")
        return server

    local_kind._server = watched
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    scenario = load_scenario(Path(args.scenario))
    with tempfile.TemporaryDirectory() as out:
        outcome = anyio.run(
            lambda: execute(prepare(scenario, Path(out) / "run", RunOptions(progress="off")))
        )
    stop.set()
    thread.join()
    local_kind._server = real
    token_bytes = servers[0].engine.cache.token_bytes() if servers else 0
    peak = max(samples, key=lambda s: s[1]) if samples else (0, 0, 0, 0)
    mark(
        "run finished",
        wall_s=round(time.perf_counter() - started, 1),
        status=outcome.status,
        kv_token_kb=round(token_bytes / 1024, 1),
        peak_kv_mb=round(max((s[2] for s in samples), default=0) * token_bytes / 2**20, 1),
        peak_prefix_mb=round(max((s[3] for s in samples), default=0) * token_bytes / 2**20, 1),
        rss_at_peak={"t": round(peak[0], 1), "rss_mb": peak[1], "kv_tokens": peak[2]},
        servers=outcome.servers,
        engine=[msgspec.structs.asdict(s.engine.stats) for s in servers],
        engine_time={k: round(v, 1) for k, v in timed.items()},
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"stages": stages, "samples": samples[::5]}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
