"""Scenario loading: every mistake names the file, the key and the reason."""

from __future__ import annotations

import pytest
from conftest import MINIMAL, SCENARIOS

from prose_sim.errors import UsageError
from prose_sim.scenario import ScenarioError, dump_scenario, load_scenario, scenario_from_dict


def error_of(write_scenario, text, overrides=()):
    path = write_scenario(text)
    with pytest.raises(UsageError) as info:
        load_scenario(path, list(overrides))
    return info.value


def test_quickstart_loads_and_resolves_personas():
    scenario = load_scenario(SCENARIOS / "quickstart.toml")
    assert scenario.name == "quickstart"
    assert scenario.tasks["summarization"].personas == ["imdb"]


def test_personas_default_to_all_users_of_the_task(write_scenario):
    scenario = load_scenario(write_scenario('name="t"\n[tasks.email_writing]\n[methods.oracle]\n'))
    assert scenario.tasks["email_writing"].personas == ["ccby", "slf5k", "ampere", "paper_tweet"]


def test_unknown_top_level_key(write_scenario):
    err = error_of(write_scenario, "bogus = 1\n" + MINIMAL)
    assert isinstance(err, ScenarioError)
    assert err.key == "bogus" and err.reason == "unknown key"
    assert str(err).startswith(str(err.origin)) and "scenario.toml: bogus: unknown key" in str(err)


def test_unknown_nested_key(write_scenario):
    err = error_of(write_scenario, MINIMAL + "[models.user]\nbackend='scripted'\ntemprature=0.1\n")
    assert err.key == "models.user.temprature"


def test_wrong_type_names_the_key(write_scenario):
    err = error_of(write_scenario, MINIMAL.replace("seeds = [1235]", 'seeds = ["x"]'))
    assert err.key == "seeds[0]" and "expected `int`" in err.reason


def test_out_of_range_value(write_scenario):
    err = error_of(
        write_scenario,
        MINIMAL.replace("demonstrations_per_user = 2", "demonstrations_per_user = 0"),
    )
    assert err.key == "demonstrations_per_user"


def test_missing_required_key(write_scenario):
    err = error_of(write_scenario, MINIMAL.replace('name = "t"', ""))
    assert err.key == "name" and "missing" in err.reason


def test_unknown_persona(write_scenario):
    err = error_of(write_scenario, MINIMAL.replace('"imdb"', '"nobody"'))
    assert err.key == "tasks.summarization.personas[1]"
    assert "unknown persona 'nobody'" in err.reason and "cnn_dailymail" in err.reason


def test_unknown_method(write_scenario):
    err = error_of(write_scenario, MINIMAL + "[methods.magic]\n")
    assert err.key == "methods.magic" and "unknown method 'magic'" in err.reason


def test_unknown_method_named_by_method_key(write_scenario):
    err = error_of(write_scenario, MINIMAL + '[methods.mine]\nmethod = "magic"\n')
    assert err.key == "methods.mine.method"


def test_unknown_task(write_scenario):
    err = error_of(write_scenario, MINIMAL + "[tasks.poetry]\n")
    assert err.key == "tasks.poetry" and "unknown task" in err.reason


def test_unknown_framework(write_scenario):
    err = error_of(
        write_scenario,
        MINIMAL.replace("[tasks.summarization]", '[tasks.summarization]\nframework="x"'),
    )
    assert err.key == "tasks.summarization.framework"


def test_unknown_backend(write_scenario):
    err = error_of(write_scenario, MINIMAL + '[models.agent]\nbackend = "gpt"\n')
    assert err.key == "models.agent.backend"


def test_more_demonstrations_than_documents(write_scenario):
    err = error_of(
        write_scenario,
        MINIMAL.replace("demonstrations_per_user = 2", "demonstrations_per_user = 500"),
    )
    assert err.key == "demonstrations_per_user" and "has only" in err.reason


def test_invalid_toml(write_scenario):
    err = error_of(write_scenario, "name = \n")
    assert "invalid TOML" in str(err)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


def test_set_overrides_any_key(write_scenario):
    path = write_scenario(MINIMAL)
    scenario = load_scenario(
        path,
        [
            "seeds=[1, 2]",
            "models.user.latency_s=0.25",
            'tasks.summarization.personas=["imdb"]',
            "name=renamed",
        ],
    )
    assert scenario.seeds == [1, 2]
    assert scenario.models.user.latency_s == 0.25
    assert scenario.tasks["summarization"].personas == ["imdb"]
    assert scenario.name == "renamed"


def test_set_errors_name_the_key(write_scenario):
    path = write_scenario(MINIMAL)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["models.user.nope=1"])
    assert info.value.key == "models.user.nope"
    with pytest.raises(UsageError, match="KEY=VALUE"):
        load_scenario(path, ["novalue"])
    with pytest.raises(UsageError, match="not a table"):
        load_scenario(path, ["name.x=1"])


def test_resolved_scenario_round_trips(write_scenario):
    scenario = load_scenario(write_scenario(MINIMAL))
    again = load_scenario(write_scenario(dump_scenario(scenario), "resolved.toml"))
    assert again == scenario


def test_both_frameworks(write_scenario):
    scenario = scenario_from_dict(
        {
            "name": "t",
            "tasks": {"summarization": {"framework": ["plume", "prelude"]}},
            "methods": {"oracle": {}},
        },
        "inline",
    )
    assert scenario.tasks["summarization"].frameworks == ["plume", "prelude"]


def test_unreachable_huggingface_corpus_stops_at_load_naming_the_dataset(
    write_scenario, monkeypatch
):
    pytest.importorskip("datasets")
    from prose_sim.world import hf_datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(hf_datasets, "_default_load_dataset", lambda: offline)
    err = error_of(write_scenario, 'corpus = "huggingface"\n' + MINIMAL)
    assert "cnn_dailymail" in str(err) and "--set corpus=bundled" in str(err)


def test_the_retry_table_is_the_gateways_retry_policy(write_scenario):
    from prose_sim.models.gateway import RetryPolicy

    scenario = load_scenario(write_scenario(MINIMAL + "[retry]\nattempts = 5\ntimeout_s = 2.0\n"))
    assert isinstance(scenario.retry, RetryPolicy)
    assert scenario.retry == RetryPolicy(attempts=5, timeout_s=2.0)
    err = error_of(write_scenario, MINIMAL + "[retry]\nattempts = 0\n")
    assert err.key == "retry.attempts" and ">= 1" in err.reason
    assert error_of(write_scenario, MINIMAL + "[retry]\ntries = 2\n").key == "retry.tries"


def test_the_schema_alone_loads_no_world(write_scenario):
    from prose_sim.scenario import parse_scenario

    raw = {"name": "t", "tasks": {"summarization": {"personas": ["nobody"]}}, "methods": {}}
    scenario = parse_scenario(raw, "inline")  # unknown personas are the world's to find
    assert scenario.tasks["summarization"].personas == ["nobody"]
    with pytest.raises(ScenarioError, match="unknown persona 'nobody'"):
        scenario_from_dict({**raw, "methods": {"oracle": {}}}, "inline")


def test_a_run_folder_of_an_earlier_version_with_corpus_max_per_source_still_loads(
    write_scenario,
):
    # every scenario.toml written before the released loader came carries this key; it has
    # no effect now, but replay, resume and report of those folders must still read them
    scenario = load_scenario(write_scenario("corpus_max_per_source = 200\n" + MINIMAL))
    assert scenario.corpus_max_per_source == 200
    assert "corpus_max_per_source" not in dump_scenario(load_scenario(write_scenario(MINIMAL)))
