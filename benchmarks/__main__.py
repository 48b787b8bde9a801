"""``python -m benchmarks SUITE [--quick] [--out DIR]``, from the repository root.

The benchmarks live beside the package, not in it (a wheel ships the product only): each
suite measures side by side in one run, prints a table and writes ``bench_<suite>.json``
and ``.md`` under ``--out``, then ``benchmarks/RESULTS.md`` collects the latest of each.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from pathlib import Path

from benchmarks.common import write_results_index
from prose_sim.gc_policy import relaxed_gc

SUITES = ("overhead", "ratelimits", "variants", "local")
RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run a benchmark suite: each measures side by side in one run, prints a table "
        "and writes bench_<suite>.json and .md under --out (default benchmarks/results).",
    )
    parser.add_argument("suite", choices=[*SUITES, "all"])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (a smoke test; not for the record)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    suites = SUITES if args.suite == "all" else (args.suite,)
    for suite in suites:
        module = importlib.import_module(f"benchmarks.{suite}")
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
    index = write_results_index(args.out, args.out.parent / "RESULTS.md")
    print(f"updated {index}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
