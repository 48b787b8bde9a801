"""The layers hold: no import cycle among prose_sim's modules or its top-level packages,
and the settings package at the bottom imports nothing above it.

The import graph is read from the source (every ``import`` and ``from ... import``,
inside functions too; ``if TYPE_CHECKING:`` blocks aside), with the implicit
import of a module's parent packages (importing ``a.b.c`` runs ``a/b/__init__``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import prose_sim

PACKAGE = Path(prose_sim.__file__).parent


def module_files() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The prose_sim modules ``module`` imports (with the parents that importing them runs)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    out = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if not name or name == module or name == "prose_sim":
            continue
        out.add(name)
        parent = name.rpartition(".")[0]
        while parent.count("."):  # importing a.b.c runs a.b's __init__ (unless inside a.b)
            if not (module == parent or module.startswith(parent + ".")):
                out.add(parent)
            parent = parent.rpartition(".")[0]
    return out


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {m: imported(m, p, modules) for m, p in modules.items()}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_module_of_prose_sim_imports_itself_through_others():
    assert cycle(import_graph()) is None


def test_no_top_level_package_of_prose_sim_imports_itself_through_others():
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        packages.setdefault(top(module), set()).update(
            top(t) for t in targets if top(t) != top(module)
        )
    assert cycle(packages) is None


def test_the_config_package_imports_nothing_of_prose_sim_above_it():
    above = {
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if top(module) == "config"
        for target in targets
        if top(target) != "config"
    }
    assert above == set()


def test_importing_the_config_package_loads_no_actor_backend_gateway_or_jinja2():
    code = (
        "import sys, prose_sim.config; "
        "print('\\n'.join(m for m in sys.modules if m.startswith(('prose_sim', 'jinja2'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded and all(m == "prose_sim" or m.startswith("prose_sim.config") for m in loaded)


def test_no_module_outside_the_cli_imports_the_cli():
    offenders = {
        module
        for module, targets in import_graph().items()
        if top(module) not in ("cli", "__main__") and any(top(t) == "cli" for t in targets)
    }
    assert offenders == set()
