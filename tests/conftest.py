from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


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
