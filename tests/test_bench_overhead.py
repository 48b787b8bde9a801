"""bench overhead's bookkeeping: CPU split by component, and the headline figures' history."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.common import SuiteResult
from benchmarks.overhead import EVENT_LOOP, component_shares, record_history

JUDGE = ("/x/prose_sim/actors/judge.py", 1, "_score")
TOKENS = ("/x/prose_sim/metrics/wordtokens.py", 1, "word_tokenize")
GATEWAY = ("/x/prose_sim/models/gateway.py", 1, "complete")
SUB = ("~", 0, "<method 'sub' of 're.Pattern' objects>")
STEP = ("/usr/lib/python3.11/asyncio/events.py", 78, "_run")


def test_cpu_goes_to_the_component_of_its_file_and_library_time_to_its_callers():
    stats = SimpleNamespace(
        stats={
            # function: (calls, primitive calls, own time, cumulative, callers)
            JUDGE: (1, 1, 1.0, 10.0, {STEP: (1, 1, 1.0, 10.0)}),
            TOKENS: (1, 1, 2.0, 6.0, {JUDGE: (1, 1, 2.0, 6.0)}),
            GATEWAY: (1, 1, 1.0, 3.0, {STEP: (1, 1, 1.0, 3.0)}),
            # re.sub: 3 s called by the tokenizer, 1 s by the gateway
            SUB: (2, 2, 4.0, 4.0, {TOKENS: (1, 1, 3.0, 3.0), GATEWAY: (1, 1, 1.0, 1.0)}),
            STEP: (2, 2, 2.0, 15.0, {}),  # the loop itself: no prose_sim caller
        }
    )
    shares = component_shares(stats)
    assert shares == pytest.approx(
        {"metrics": 5 / 10, "gateway": 2 / 10, "actors": 1 / 10, EVENT_LOOP: 2 / 10}
    )
    assert next(iter(shares)) == "metrics"  # largest first


def test_the_bench_s_own_timed_wrapper_counts_as_the_scripted_double():
    wrapper = ("/x/benchmarks/overhead.py", 1, "compute")
    scripted = ("/x/prose_sim/models/backends/scripted.py", 1, "compute")
    stats = SimpleNamespace(
        stats={
            wrapper: (1, 1, 1.0, 4.0, {STEP: (1, 1, 1.0, 4.0)}),
            scripted: (1, 1, 3.0, 3.0, {wrapper: (1, 1, 3.0, 3.0)}),
            STEP: (1, 1, 1.0, 5.0, {}),
        }
    )
    assert component_shares(stats) == pytest.approx(
        {"backend (scripted double)": 4 / 5, EVENT_LOOP: 1 / 5}
    )


def _result(ratio: float, cpu_us: float) -> SuiteResult:
    row = {"case": "full", "episodes": 1000, "latency_s": 0.0}
    return SuiteResult(
        suite="overhead",
        command="python -m benchmarks overhead --quick",
        machine={"cpus": 2},
        rows=[{**row, "vs_reference": ratio, "cpu_us_per_call": cpu_us}],
    )


def test_each_run_appends_its_headline_figures_to_the_history(tmp_path):
    record_history(_result(0.1, 1006.0), tmp_path)
    path = record_history(_result(0.35, 390.0), tmp_path)
    text = path.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2
    assert "| 0.1 | 1,006 |" in rows[0] and "| 0.35 | 390 |" in rows[1]
    assert text.count("# bench overhead: history") == 1


CACHEGRIND_STDERR = """==6329== Cachegrind, a high-precision tracing profiler
==6329== Command: python -m benchmarks.overhead {}
==6329==
==6329== I   refs:      3,485,172,174
"""


def test_the_instruction_count_is_read_from_cachegrinds_summary_line():
    from benchmarks.overhead import parse_instruction_refs

    assert parse_instruction_refs(CACHEGRIND_STDERR) == 3_485_172_174
    # a run's own output naming the same words is not the summary
    assert parse_instruction_refs("I   refs: 12\nno summary\n") is None


def test_instructions_per_call_take_the_smaller_runs_count_from_the_larger_ones(monkeypatch):
    import benchmarks.overhead as overhead

    counted = {  # (case, episodes) -> (instructions, calls): 1,000 a call over a start-up
        ("full", 54): (5_000_000 + 864 * 1000, 864),
        ("full", 216): (5_000_000 + 3456 * 1000, 3456),
        ("reference", 40): (2_000_000 + 800 * 250, 800),
        ("reference", 160): (2_000_000 + 3200 * 250, 3200),
    }
    monkeypatch.setattr(overhead.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(overhead, "_instructions", lambda case, n: counted[(case, n)])
    assert overhead.instructions_per_call() == {
        "full": 1000,
        "reference": 250,
        "reference_over_full": 0.25,
    }
    monkeypatch.setattr(overhead.shutil, "which", lambda name: None)
    assert overhead.instructions_per_call() is None  # not measured, and the notes say so


def test_the_history_note_carries_the_instruction_counts_when_measured(tmp_path):
    from benchmarks.overhead import instruction_checks

    result = _result(0.3, 150.0)
    result.checks = instruction_checks(
        {"full": 646_705, "reference": 271_200, "reference_over_full": 0.419}
    )
    text = record_history(result, tmp_path, note="after the change").read_text(encoding="utf-8")
    assert (
        "| after the change; instructions per call 646,705 (reference 271,200; ratio 0.419) |"
        in text
    )
