"""The settings tables: each method's and each backend's own Struct, checked as they load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import MINIMAL

from prose_sim.config import (
    CipherSettings,
    LocalSpec,
    MethodSettings,
    OpenAISpec,
    ProseSettings,
    ScriptedSpec,
)
from prose_sim.errors import ScenarioError
from prose_sim.scenario import load_run, load_scenario

OLD_RUN = Path(__file__).parent / "data" / "old_run_f511408"


def test_a_method_table_loads_as_its_methods_own_settings(write_scenario):
    path = write_scenario(
        MINIMAL.replace(
            "[methods.oracle]",
            '[methods.oracle]\n[methods.cipherN]\nnum_merged = 2\n[methods.p]\nmethod = "prose"\nvariant = "sc"',
        )
    )
    methods = load_scenario(path).methods
    assert type(methods["no_learning"]) is MethodSettings
    assert isinstance(methods["cipherN"], CipherSettings) and methods["cipherN"].num_merged == 2
    assert isinstance(methods["p"], ProseSettings) and methods["p"].variant == "sc"


def test_a_knob_of_another_method_is_an_error_naming_the_method(write_scenario):
    path = write_scenario(MINIMAL.replace("[methods.oracle]", "[methods.icl]\nnum_merged = 2"))
    with pytest.raises(
        ScenarioError, match=r"methods\.icl\.num_merged: not a setting of method 'icl'"
    ):
        load_scenario(path)


def test_a_role_table_loads_as_its_backends_own_spec(write_scenario):
    path = write_scenario(
        MINIMAL
        + '\n[models.user]\nlatency_s = 0.5\n[models.agent]\nbackend = "openai"\nmodel = "m"\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
    )
    models = load_scenario(path).models
    assert isinstance(models.user, ScriptedSpec) and models.user.latency_s == 0.5
    assert isinstance(models.agent, OpenAISpec) and models.agent.base_url.endswith("/v1")
    assert isinstance(models.judge, ScriptedSpec)


def test_a_scripted_role_with_dtype_is_an_error_naming_the_kind_that_takes_it(write_scenario):
    path = write_scenario(MINIMAL + '\n[models.user]\ndtype = "bfloat16"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "models.user.dtype"
    assert info.value.reason == "not a key of backend 'scripted' (a key of backend 'local')"


def test_a_local_role_refuses_an_openai_key_and_an_openai_role_a_scripted_one(write_scenario):
    local = write_scenario(MINIMAL + '\n[models.agent]\nbackend = "local"\nbase_url = "x"\n')
    with pytest.raises(
        ScenarioError, match=r"models\.agent\.base_url: not a key of backend 'local'"
    ):
        load_scenario(local)
    remote = MINIMAL + '\n[models.judge]\nbackend = "openai"\nmodel = "m"\nmin_words = 3\n'
    with pytest.raises(
        ScenarioError,
        match=r"models\.judge\.min_words: not a key of backend 'openai' \(a key of backend 'scripted'\)",
    ):
        load_scenario(write_scenario(remote))


def test_a_key_no_backend_takes_is_an_unknown_key(write_scenario):
    path = write_scenario(MINIMAL + "\n[models.user]\ntemprature = 0.5\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.key, info.value.reason) == ("models.user.temprature", "unknown key")


def test_a_role_that_is_not_a_role_is_an_unknown_key(write_scenario):
    path = write_scenario(MINIMAL + "\n[models.critic]\nmodel = 'x'\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.key, info.value.reason) == ("models.critic", "unknown key")


def test_the_local_spec_holds_the_servers_settings():
    assert {"dtype", "device", "max_batch_size", "max_wait_s"} <= set(LocalSpec.__struct_fields__)
    assert not {"dtype", "base_url", "latency_s"} & set(MethodSettings.__struct_fields__)


def test_an_older_runs_scenario_with_every_backends_keys_loads_as_a_recorded_scenario(tmp_path):
    """Versions with one flat model table wrote every key of every backend at its default."""
    old = (OLD_RUN / "scenario.toml").read_text(encoding="utf-8")
    assert 'dtype = "auto"' in old and 'base_url = ""' in old  # as written then
    run = load_run(OLD_RUN / "scenario.toml", recorded=True)
    assert isinstance(run.scenario.models.judge, ScriptedSpec)
    assert run.scenario.models.judge.min_words == 20
    copy = tmp_path / "scenario.toml"
    shutil.copyfile(OLD_RUN / "scenario.toml", copy)
    with pytest.raises(
        ScenarioError, match=r"models\.user\.base_url: not a key of backend 'scripted'"
    ):
        load_run(copy)  # a scenario a user writes is held to its backend's keys


def test_a_recorded_scenario_keeps_a_key_of_another_backend_that_is_not_its_default(tmp_path):
    text = (OLD_RUN / "scenario.toml").read_text(encoding="utf-8")
    copy = tmp_path / "scenario.toml"
    copy.write_text(text.replace('dtype = "auto"', 'dtype = "bfloat16"', 1), encoding="utf-8")
    with pytest.raises(
        ScenarioError, match=r"models\.user\.dtype: not a key of backend 'scripted'"
    ):
        load_run(copy, recorded=True)


def test_the_local_servers_kv_budget_and_prefix_cache_are_keys_of_a_local_role(write_scenario):
    path = write_scenario(
        MINIMAL
        + '\n[models.agent]\nbackend = "local"\nmax_kv_tokens = 4096\nprefix_cache_tokens = 0\n'
    )
    agent = load_scenario(path).models.agent
    assert isinstance(agent, LocalSpec)
    assert (agent.max_kv_tokens, agent.prefix_cache_tokens) == (4096, 0)
    assert LocalSpec().max_kv_tokens is None and LocalSpec().prefix_cache_tokens == 1024


def test_a_local_roles_kv_budget_and_prefix_cache_reach_its_model_server(
    write_scenario, monkeypatch
):
    from prose_sim.models import local_loading
    from prose_sim.models.backends import local
    from prose_sim.runtime.backends import build_models

    made: list[dict] = []

    class Server:  # what the runner needs of a model server, and nothing loaded
        on_batch = None
        stats = None

        def __init__(self, *args, **kwargs):
            made.append(kwargs)

        def live(self): ...
        async def __aenter__(self): ...
        async def __aexit__(self, *exc_info): ...
        async def complete(self, request): ...
        async def aclose(self): ...

    monkeypatch.setattr(local, "LocalModelServer", Server)
    monkeypatch.setattr(
        local_loading, "load_local_model", lambda *a, **k: (None, None, "cpu", "float32")
    )
    path = write_scenario(
        MINIMAL
        + '\n[models.agent]\nbackend = "local"\nmax_kv_tokens = 4096\nprefix_cache_tokens = 0\n'
    )
    build_models(load_scenario(path))
    assert [(m["max_kv_tokens"], m["prefix_cache_tokens"]) for m in made] == [(4096, 0)]
