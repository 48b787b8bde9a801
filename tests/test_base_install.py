"""The base install (`pip install -e .`, no extra) runs the scripted scenarios, and every
hint for a missing extra is the exact command, with the torch pin where torch comes in."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

import pytest

from prose_sim.extras import TORCH_EXTRAS, TORCH_PIN, install_command, missing_extra
from tests.conftest import ROOT, SCENARIOS

HEAVY = ("torch", "transformers", "bert_score", "sentence_transformers")


def _imported_after(args: list[str], tmp_path) -> list[str]:
    """The heavy modules that running the CLI with ``args`` imported (in a fresh process)."""
    code = (
        "import sys\n"
        "from prose_sim.cli import main\n"
        f"rc = main({args!r})\n"
        f"print('HEAVY', rc, [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("HEAVY")), None)
    assert line is not None, done.stderr[-2000:]
    _, rc, modules = line.split(" ", 2)
    assert rc == "0", done.stderr[-2000:]
    return ast.literal_eval(modules)


def test_a_scripted_scenario_imports_no_torch_nor_bert_score(tmp_path):
    args = [
        "run",
        str(SCENARIOS / "methods.toml"),
        "--out",
        str(tmp_path / "run"),
        "--progress",
        "off",
        "--set",
        "demonstrations_per_user=1",
        "--no-report",
    ]
    assert _imported_after(args, tmp_path) == []


def test_prompts_show_imports_no_torch_nor_bert_score(tmp_path):
    assert _imported_after(["prompts", "show", "--method", "prose"], tmp_path) == []


def test_methods_toml_asks_for_no_model_metric():
    with open(SCENARIOS / "methods.toml", "rb") as f:
        assert tomllib.load(f)["metrics"]["bertscore"] == ""


def _extras_with_torch() -> set[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]

    def brings_torch(name: str) -> bool:
        for dep in extras[name]:
            if dep.startswith("torch"):
                return True
            if dep.startswith("prose-sim["):
                inner = dep[len("prose-sim[") : dep.index("]")].split(",")
                if any(brings_torch(e.strip()) for e in inner):
                    return True
        return False

    return {name for name in extras if brings_torch(name)}


def test_the_extras_said_to_bring_torch_are_those_that_do():
    assert _extras_with_torch() == set(TORCH_EXTRAS)


@pytest.mark.parametrize("extra", ["local", "embed", "bertscore", "test", "hf", "wandb"])
def test_a_missing_extra_hint_is_the_exact_command_with_the_torch_pin_where_torch_comes_in(
    extra, monkeypatch
):
    monkeypatch.chdir(ROOT)
    hint = str(missing_extra("something", extra))
    expected = f"pip install -e '.[{extra}]'"
    if extra in TORCH_EXTRAS:
        expected += f" {TORCH_PIN}"
    assert hint.endswith(expected)
    assert install_command(extra) == expected


def test_the_pin_is_the_one_the_readme_and_ci_install():
    assert TORCH_PIN in (ROOT / "README.md").read_text(encoding="utf-8")
    assert TORCH_PIN in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
