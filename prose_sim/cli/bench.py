"""``bench``: the throughput and cost benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from prose_sim.cli.common import EXIT_OK
from prose_sim.gc_policy import relaxed_gc

BENCH_SUITES = ("overhead", "ratelimits", "variants", "local")


def add_bench(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="throughput and cost benchmarks (overhead, ratelimits, variants, local)",
        description="Run a benchmark suite: each measures side by side in one run, prints a table "
        "and writes bench_<suite>.json and .md under --out (default benchmarks/results).",
    )
    bench.add_argument("suite", choices=[*BENCH_SUITES, "all"])
    bench.add_argument(
        "--quick", action="store_true", help="smaller sizes (a smoke test; not for the record)"
    )
    bench.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    bench.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    suites = BENCH_SUITES if args.suite == "all" else (args.suite,)
    for suite in suites:
        module = importlib.import_module(f"prose_sim.bench.{suite}")
        print(f"bench {suite}: running ...", file=sys.stderr)
        # the suites that run scenarios do so under a run's GC setting; local drives a model
        gc_policy: contextlib.AbstractContextManager[None] = (
            relaxed_gc() if suite != "local" else contextlib.nullcontext()
        )
        with gc_policy:
            result = module.run(quick=args.quick)
        json_path, md_path = result.write(args.out)
        if suite == "overhead":  # the headline figures' history, which RESULTS.md shows
            module.record_history(result, args.out)
        sys.stdout.write(result.markdown() + "\n")
        print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    from prose_sim.bench.common import write_results_index

    index = write_results_index(args.out, args.out.parent / "RESULTS.md")
    print(f"updated {index}", file=sys.stderr)
    return EXIT_OK
