"""Inference methods from installed packages: the ``prose_sim.methods`` entry-point group."""

from __future__ import annotations

import csv
from importlib.metadata import EntryPoint, entry_points

import pytest
from conftest import MINIMAL

from prose_sim import entry_points as plugin_lookup
from prose_sim.actors.inferrers.simple import NoLearning
from prose_sim.cli import main
from prose_sim.scenario import ScenarioError, scenario_from_dict

GROUP = "prose_sim.methods"


class NotAMethod:
    pass


class SettingsNotAStruct(NoLearning):
    settings_type = dict  # type: ignore[assignment]


def with_methods(methods: dict) -> dict:
    return {
        "name": "m",
        "demonstrations_per_user": 2,
        "tasks": {"summarization": {"personas": ["cnn_dailymail"]}},
        "methods": methods,
        "metrics": {"bertscore": ""},
    }


@pytest.fixture
def fake_plugins(monkeypatch):
    """Replace the installed method plugins with these (name, target) entry points."""

    def install(*targets: tuple[str, str]):
        eps = [EntryPoint(name, value, GROUP) for name, value in targets]
        monkeypatch.setattr(
            plugin_lookup, "entry_points", lambda group: eps if group == GROUP else []
        )

    return install


def test_the_installed_example_method_is_listed_with_its_distribution_and_knobs(capsys):
    """Install it as the README's test command does: pip install -e examples/prose_sim_example_method."""
    names = [ep.name for ep in entry_points(group=GROUP)]
    assert "frequent" in names, (
        "install the example plugin: pip install -e examples/prose_sim_example_method"
    )
    assert main(["methods", "list"]) == 0
    rows = {
        line.split("│")[1].strip(): line
        for line in capsys.readouterr().out.splitlines()
        if "│" in line
    }
    assert (
        "plugin prose-sim-example-method 0.1.0" in rows["frequent"]
        and "retrieval_mode" in rows["frequent"]
        and "keep" in rows["frequent"]
    )
    assert "built-in" in rows["prose"] and "candidate_type" in rows["prose"]
    assert "built-in" in rows["no_learning"]


def test_the_installed_example_method_runs_in_a_scenario(write_scenario, tmp_path, capsys):
    path = write_scenario(
        MINIMAL.replace("[methods.oracle]", '[methods.frequent]\nretrieval_mode = "most_recent"')
    )
    assert (
        main(["run", str(path), "--out", str(tmp_path / "run"), "--progress", "off", "--no-report"])
        == 0
    )
    with open(tmp_path / "run" / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"no_learning", "frequent"}
    assert sum(r["method"] == "frequent" for r in rows) == 4


def test_an_unknown_method_is_one_line_naming_the_key_and_the_known_names(
    write_scenario, tmp_path, capsys
):
    path = write_scenario(MINIMAL.replace("[methods.oracle]", '[methods.mine]\nmethod = "nope"'))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: {path}: methods.mine.method: unknown method 'nope' (known: ")
    assert "frequent" in err and "prose" in err and "no_learning" in err


def test_a_plugin_that_fails_to_import_is_named(fake_plugins):
    fake_plugins(("broken", "no_such_module_for_a_test:Method"))
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(with_methods({"broken": {}}), "s.toml")
    assert str(info.value).startswith(
        "s.toml: methods.broken: entry point 'broken' (no_such_module_for_a_test:Method) in group "
        "prose_sim.methods: failed to load: ModuleNotFoundError"
    )


def test_a_plugin_naming_something_other_than_an_inferrer_is_an_error(fake_plugins):
    fake_plugins(("odd", "test_method_plugins:NotAMethod"))
    with pytest.raises(
        ScenarioError, match=r"entry point 'odd' .*not a subclass of prose_sim's Inferrer"
    ):
        scenario_from_dict(with_methods({"odd": {}}), "s.toml")


def test_a_plugin_whose_settings_are_not_a_method_settings_struct_is_an_error(fake_plugins):
    fake_plugins(("hot", "test_method_plugins:SettingsNotAStruct"))
    with pytest.raises(
        ScenarioError,
        match=r"entry point 'hot' .*its settings_type <class 'dict'> is not a subclass of MethodSettings",
    ):
        scenario_from_dict(with_methods({"hot": {}}), "s.toml")


def test_a_plugin_method_declares_a_knob_of_its_own_which_a_scenario_sets():
    scenario = scenario_from_dict(with_methods({"frequent": {"keep": 2}}), "s.toml")
    settings = scenario.methods["frequent"]
    assert type(settings).__name__ == "FrequentSettings" and settings.keep == 2  # type: ignore[attr-defined]


def test_a_plugin_methods_own_knob_is_validated_by_its_type():
    with pytest.raises(ScenarioError, match=r"methods\.frequent\.keep: expected `int`"):
        scenario_from_dict(with_methods({"frequent": {"keep": "many"}}), "s.toml")
    with pytest.raises(ScenarioError, match=r"methods\.frequent\.keep: expected `int` >= 1"):
        scenario_from_dict(with_methods({"frequent": {"keep": 0}}), "s.toml")


def test_a_built_in_method_refuses_a_plugins_knob():
    with pytest.raises(
        ScenarioError, match=r"methods\.prose\.keep: not a setting of method 'prose'"
    ):
        scenario_from_dict(with_methods({"prose": {"keep": 2}}), "s.toml")


def test_a_plugin_may_not_take_a_built_in_methods_name(fake_plugins, capsys):
    fake_plugins(("prose", "test_method_plugins:NotAMethod"))
    assert main(["methods", "list"]) == 2
    err = capsys.readouterr().err
    assert (
        "entry point 'prose' (test_method_plugins:NotAMethod) in group prose_sim.methods: " in err
    )
    assert "'prose' is the name of a built-in method" in err


def test_a_knob_the_plugin_method_does_not_take_is_an_error():
    with pytest.raises(
        ScenarioError, match=r"methods\.frequent\.num_merged: not a setting of method 'frequent'"
    ):
        scenario_from_dict(with_methods({"frequent": {"num_merged": 2}}), "s.toml")


def test_plugins_are_not_looked_at_when_a_scenario_names_only_built_in_methods(monkeypatch):
    scan = plugin_lookup.entry_points

    def refuse(group):  # persona plugins are read for every run; method plugins must not be
        if group == GROUP:
            raise AssertionError("plugins were scanned")
        return scan(group=group)

    monkeypatch.setattr(plugin_lookup, "entry_points", refuse)
    scenario = scenario_from_dict(
        with_methods({"no_learning": {}, "p": {"method": "prose"}}), "s.toml"
    )
    assert set(scenario.methods) == {"no_learning", "p"}


@pytest.mark.parametrize("args", [["methods"], ["methods", "list"]])
def test_the_methods_command_has_help(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([*args, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out
