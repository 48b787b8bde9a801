"""Shared fixtures and the suite's ground rules.

The suite runs offline: ``HF_HUB_OFFLINE`` is set before anything imports huggingface_hub
(which reads it once, at import), so a model that is not on disk fails at once instead of
after a minute of retries against an unreachable hub; subprocesses inherit it.

BERTScore's real model loads only where BERTScore itself is under test: every other test
scores with ``harness.OverlapScorer`` (word overlap, same P/R/F shape, deterministic, no
torch). Mark a test or module ``real_bertscore`` to get the real model.
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

import pytest
from harness import OverlapScorer

from prose_sim.metrics.bertscore import BertScorer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

# pytest-xdist (pyproject's addopts) runs one worker per core: torch, whose intra-op threads
# default to one per core, gets its share of the cores in each worker (read when torch is
# first imported, which is after this). Two workers with two spinning threads each on two
# cores made BERTScore ten times slower. Subprocesses inherit it.
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // int(workers))))

# The test files that take longest, the longest first (their durations: docs/performance.md,
# "Test suite"): under pytest-xdist they start first, so the workers finish together instead
# of one running test_real_server.py's minute and a half alone at the end. A file not named
# here keeps its place after them.
SLOWEST_FIRST = (
    "test_gateway_proxy.py",  # mostly waiting: LiteLLM's start, a calendar minute's turn
    "test_slurm.py",  # mostly waiting: Slurm's jobs
    "test_real_server.py",
    "test_resume_matrix.py",
    "test_hostile_input.py",
    "test_run_safety.py",
    "test_persona_plugins.py",
    "test_resume.py",
    "test_cli.py",
    "test_server_behaviours.py",
    "test_metric_study.py",
    "test_openai_backend.py",
    "test_view_browser.py",
    "test_shard.py",
    "test_fuzz.py",
    "test_hf_datasets.py",
)


def pytest_xdist_auto_num_workers(config):
    """A worker per core, and one more (up to ``--maxprocesses``): the tests against real
    services (Slurm's jobs, LiteLLM's proxy, a server starting) mostly wait, and meanwhile the
    extra worker keeps the cores busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the files of ``SLOWEST_FIRST`` first (each file's own order kept)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_configure(config):
    if sys.dont_write_bytecode and not os.environ.get("PYTEST_XDIST_WORKER"):
        # PYTHONDONTWRITEBYTECODE (set on our machines) makes every `python -m prose_sim`
        # subprocess compile the package again, ~0.15 s of CPU each: compile it once here
        compileall.compile_dir(ROOT / "prose_sim", quiet=2)
    config.addinivalue_line(
        "markers", "real_bertscore: score with the real BERTScore model, not the word-overlap fake"
    )
    config.addinivalue_line(
        "markers", "real_server: against a real third-party model server (transformers serve)"
    )


_REAL_BERTSCORE = {
    "check_available": BertScorer.check_available,
    "score_sync": BertScorer.score_sync,
}


def _patch_bertscore(patch: pytest.MonkeyPatch, methods: dict) -> None:
    for name, method in methods.items():
        patch.setattr(BertScorer, name, method)


@pytest.fixture(scope="module", autouse=True)
def fake_bertscore(request):
    """Every BertScorer of the module scores by word overlap and loads nothing, unless the
    module is marked real_bertscore.

    Module-scoped and autouse, so it is in place before the module's own fixtures run (a
    module fixture's run scores as the module's tests do); patched on the class, so it holds
    wherever a run builds its scorer (metrics or retrieval), cached or not."""
    if request.node.get_closest_marker("real_bertscore"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        _patch_bertscore(
            patch,
            {
                "check_available": lambda self: None,
                "score_sync": lambda self, pairs: [OverlapScorer.pair(c, r) for c, r in pairs],
            },
        )
        yield


@pytest.fixture(autouse=True)
def real_bertscore_where_marked(request, monkeypatch):
    """A test marked real_bertscore in a faked module gets the real model back for itself."""
    if request.node.get_closest_marker("real_bertscore"):
        _patch_bertscore(monkeypatch, _REAL_BERTSCORE)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def write_scenario(tmp_path):
    """Write a scenario TOML into tmp_path and return its path."""

    def write(text: str, name: str = "scenario.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


MINIMAL = """
name = "t"
seeds = [1235]
demonstrations_per_user = 2
[tasks.summarization]
personas = ["cnn_dailymail", "imdb"]
[methods.no_learning]
[methods.oracle]
"""
