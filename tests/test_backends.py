"""Model backends by name: built-in kinds loaded lazily, plugins through ``prose_sim.backends``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import anyio
import pytest
from conftest import MINIMAL, ROOT

from prose_sim import entry_points as plugin_lookup
from prose_sim.cli import main
from prose_sim.errors import UsageError
from prose_sim.models import registry
from prose_sim.models.backends.scripted import ScriptedBackend
from prose_sim.models.registry import BackendKind, Served
from prose_sim.runtime.backends import build_models
from prose_sim.scenario import ScenarioError, load_scenario

GROUP = "prose_sim.backends"
NO_METRICS = '\n[metrics]\nbertscore = ""\n'

CLOSED: list[str] = []  # the roles whose EchoBackend was closed, in order


class EchoBackend(ScriptedBackend):
    """Answers as the scripted double does; remembers that it was closed."""

    def __init__(self, role: str):
        super().__init__()
        self.role = role

    async def aclose(self) -> None:
        CLOSED.append(self.role)


class EchoKind(BackendKind):
    default_model = "echo-1"

    def build(self, role, spec, model, parts) -> Served:
        key = f"echo:{role}"
        parts.add(key, EchoBackend(role))
        return Served(key=key)


class NotAKind:
    pass


@pytest.fixture
def fake_plugins(monkeypatch):
    """Replace the installed backend plugins with these (name, target) entry points."""

    def install(*targets: tuple[str, str]):
        eps = [EntryPoint(name, value, GROUP) for name, value in targets]
        monkeypatch.setattr(
            plugin_lookup, "entry_points", lambda group: eps if group == GROUP else []
        )

    return install


def scenario_with(write_scenario, models: str):
    return write_scenario(MINIMAL + NO_METRICS + models)


def test_an_unknown_backend_is_one_line_naming_the_key_and_the_known_names(
    write_scenario, tmp_path, capsys
):
    path = scenario_with(write_scenario, '[models.agent]\nbackend = "gpt"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == (
        f"error: {path}: models.agent.backend: unknown backend 'gpt' "
        "(known: local, openai, scripted)"
    )


def test_the_known_names_include_the_installed_plugins(fake_plugins, write_scenario):
    fake_plugins(("echo", "test_backends:EchoKind"))
    with pytest.raises(ScenarioError, match=r"\(known: echo, local, openai, scripted\)"):
        load_scenario(scenario_with(write_scenario, '[models.user]\nbackend = "gtp"\n'))


def test_a_backend_module_is_imported_only_when_a_scenario_names_it(write_scenario):
    """A scripted run builds without importing the local or openai kinds (nor torch)."""
    path = scenario_with(write_scenario, "")
    script = textwrap.dedent(
        """
        import json, sys
        from prose_sim.runtime.backends import build_models
        from prose_sim.scenario import load_scenario
        build_models(load_scenario(sys.argv[1]))
        names = ("prose_sim.models.kinds.", "prose_sim.models.backends.", "torch", "transformers")
        print(json.dumps(sorted(m for m in sys.modules if m.startswith(names))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "prose_sim.models.kinds.scripted" in loaded
    assert not [m for m in loaded if m.endswith((".local", ".openai", ".openai_compat"))], loaded
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "transformers")], loaded


def test_plugins_are_not_looked_at_when_a_scenario_names_only_built_in_backends(
    monkeypatch, write_scenario
):
    scan = plugin_lookup.entry_points

    def refuse(group):  # persona plugins are read for every run; backend plugins must not be
        if group == "prose_sim.backends":
            raise AssertionError("plugins were scanned")
        return scan(group=group)

    monkeypatch.setattr(plugin_lookup, "entry_points", refuse)
    built = build_models(load_scenario(scenario_with(write_scenario, "")))
    assert {role.backend for role in built.roles.values()} == {
        f"scripted:{r}" for r in ("user", "writer", "agent", "judge")
    }


def test_an_installed_package_adds_a_backend_that_a_scenario_runs_on(
    fake_plugins, write_scenario, tmp_path
):
    fake_plugins(("echo", "test_backends:EchoKind"))
    path = scenario_with(write_scenario, '[models.agent]\nbackend = "echo"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--progress", "off"]) == 0
    with open(tmp_path / "run" / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] == "ok" and r["agent_model"] == "echo-1" for r in rows)


def test_every_backend_a_run_built_is_closed_when_it_ends(fake_plugins, write_scenario, tmp_path):
    """Through ``Backend.aclose``: the plugin's own, and one wrapped by fault injection."""
    fake_plugins(("echo", "test_backends:EchoKind"))
    models = (
        '[models.agent]\nbackend = "echo"\n'
        '[models.judge]\nbackend = "echo"\n[models.judge.faults]\nfailure_rate = 0.0\n'
    )
    path = scenario_with(write_scenario, models)
    CLOSED.clear()
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--progress", "off"]) == 0
    # the judge's backend closes twice (its wrapper closes it, and so does the run): harmless
    assert set(CLOSED) == {"agent", "judge"}


def test_built_models_close_every_backend_even_when_one_fails(fake_plugins, write_scenario):
    class Failing(EchoBackend):
        async def aclose(self) -> None:
            CLOSED.append(self.role)
            raise OSError("the socket was gone")

    fake_plugins(("echo", "test_backends:EchoKind"))
    built = build_models(
        load_scenario(scenario_with(write_scenario, '[models.agent]\nbackend = "echo"\n'))
    )
    built.built.append(Failing("last built"))  # closed first
    CLOSED.clear()
    with pytest.raises(OSError, match="the socket was gone"):
        anyio.run(built.aclose)
    assert CLOSED == ["last built", "agent"]


def test_a_plugin_backend_names_its_default_model(fake_plugins, write_scenario):
    fake_plugins(("echo", "test_backends:EchoKind"))
    built = build_models(
        load_scenario(scenario_with(write_scenario, '[models.agent]\nbackend = "echo"\n'))
    )
    assert built.roles["agent"].model == "echo-1" and built.roles["user"].model == "scripted"


def test_a_plugin_that_fails_to_import_is_named(fake_plugins):
    fake_plugins(("broken", "no_such_module_for_a_test:Kind"))
    with pytest.raises(UsageError) as info:
        registry.backend_kind("broken")
    assert str(info.value).startswith(
        "entry point 'broken' (no_such_module_for_a_test:Kind) in group prose_sim.backends: "
        "failed to load: ModuleNotFoundError"
    )


def test_a_plugin_naming_something_other_than_a_backend_kind_is_an_error(fake_plugins):
    fake_plugins(("odd", "test_backends:NotAKind"))
    with pytest.raises(UsageError, match=r"entry point 'odd' .*not a subclass of BackendKind"):
        registry.backend_kind("odd")


def test_a_plugin_may_not_take_a_built_in_backends_name(fake_plugins):
    fake_plugins(("openai", "test_backends:EchoKind"))
    with pytest.raises(UsageError, match="'openai' is the name of a built-in backend"):
        registry.backend_names()
