"""The command line is a package of its own at the top: nothing below it imports it. The
benchmarks live beside the package, not in it: nothing in the package imports them."""

from __future__ import annotations

import ast

from tests.conftest import ROOT


def _imports(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_outside_the_cli_package_imports_it():
    cli = ROOT / "prose_sim" / "cli"
    importers = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "prose_sim").rglob("*.py"))
        if cli not in path.parents
        and path.name != "__main__.py"  # `python -m prose_sim` is the command line itself
        and any(n == "prose_sim.cli" or n.startswith("prose_sim.cli.") for n in _imports(path))
    ]
    assert importers == []


def test_nothing_in_the_package_imports_the_benchmarks():
    importers = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "prose_sim").rglob("*.py"))
        if any(n == "benchmarks" or n.startswith("benchmarks.") for n in _imports(path))
    ]
    assert importers == []
