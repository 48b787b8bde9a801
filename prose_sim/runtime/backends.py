"""Building the model backends a scenario names, once per run.

Roles that name the same local model (and dtype, device and batching) share
one model server, so their requests are batched together; roles that name the
same OpenAI-compatible endpoint (base_url and key variable) share one client,
one set of rate limits and one adaptive concurrency cap. A role with several
endpoints (``base_urls``) is served by an ``EndpointPool`` over them (shared by
roles naming the same list and key variable); each endpoint is a member with
its own client and its own limits (the role's rpm, tpm and max_concurrency
each), which the pool applies, not the gateway.
"""

from __future__ import annotations

import msgspec

from prose_sim.models.backends.faulty import FaultyBackend
from prose_sim.models.backends.pool import EndpointPool, MemberLayers, PoolMember
from prose_sim.models.backends.scripted import ScriptedBackend, ScriptedSettings
from prose_sim.models.gateway import RoleModel
from prose_sim.models.limits import EndpointLayers, EndpointLimits
from prose_sim.models.protocol import ROLES, Backend, SamplingParams
from prose_sim.models.recorded import UnrecordedBackend
from prose_sim.scenario import ModelSpec, Scenario

EMBEDDED_DEFAULT = "smollm2-135m-instruct"


def model_name(spec: ModelSpec) -> str:
    if spec.model:
        return spec.model
    return EMBEDDED_DEFAULT if spec.backend == "local" else spec.backend


class BuiltModels(msgspec.Struct, kw_only=True):
    backends: dict[str, Backend]
    roles: dict[str, RoleModel]
    servers: list  # local model servers to run for the whole run
    # by backend key; endpoints share one. A pool's members are here under their own
    # endpoint keys (MemberLayers, applied by the pool); the pool's key has none
    layers: dict[str, EndpointLayers]
    cache_ids: dict[str, str]  # by backend key: backends whose answers may be cached
    clients: list  # backends to close at the end (HTTP clients)


def check_credentials(scenario: Scenario, where: str = "scenario") -> None:
    """Raise a UsageError naming how to fix it when an openai model's key is not set."""
    from prose_sim.models.backends.openai_compat import read_key

    for role in ROLES:
        spec: ModelSpec = scenario.models.of(role)
        if spec.backend == "openai":
            read_key(spec.api_key_env, f"{where}: models.{role}")


def build_models(
    scenario: Scenario, concurrency: int | None = None, replay: bool = False
) -> BuiltModels:
    """The backends, role models and shared layers a scenario names.

    An openai model whose key is not set raises a UsageError here, before the
    runner writes anything.

    ``concurrency`` (the run's episodes in flight) sizes the HTTP pools and the
    adaptive concurrency caps where ``max_concurrency`` is not set.

    ``replay``: the same roles (model names, sampling, prefixes: hence the same
    requests), all served by one backend that holds nothing (answers come from
    the recorded log); no model is loaded and no key is read.
    """
    backends: dict[str, Backend] = {}
    roles: dict[str, RoleModel] = {}
    servers = []
    limits: dict[str, EndpointLimits] = {}
    cache_ids: dict[str, str] = {}
    clients = []
    aliases: dict[str, str] = {}  # fault-injecting wrapper key -> the wrapped backend's key
    members: dict[str, PoolMember] = {}  # pool members, by endpoint key
    default_cap = max(1, concurrency or scenario.concurrency or 100)
    for role in ROLES:
        spec: ModelSpec = scenario.models.of(role)
        name = model_name(spec)
        cap = spec.max_concurrency or default_cap
        prefix = spec.response_prefix and spec.backend != "openai"
        endpoints: list[str] = []  # a pool's members: the keys its limits go to
        if replay:
            key = "replay"
            backends.setdefault(key, UnrecordedBackend())
        elif spec.backend == "local":
            key = f"local:{name}:{spec.dtype}:{spec.device}:{spec.max_batch_size}:{spec.max_wait_s}"
            if key not in backends:
                backends[key] = _local_server(spec, name)
                servers.append(backends[key])
        elif spec.backend == "openai":
            urls = spec.base_urls or [spec.base_url]
            endpoints = [f"openai:{url}:{spec.api_key_env}" for url in urls]
            for url, endpoint in zip(urls, endpoints):  # one client per endpoint
                if endpoint not in backends:
                    backend = _openai_backend(spec, role, url, cap)
                    backends[endpoint] = backend
                    cache_ids[endpoint] = backend.cache_identity
                    clients.append(backend)
            if not spec.base_urls:
                key, endpoints = endpoints[0], []
            else:  # several endpoints: one pool over them, each a member with its own limits
                key = f"openai-pool:{','.join(urls)}:{spec.api_key_env}"
                if key not in backends:
                    for endpoint in endpoints:
                        if endpoint not in members:
                            members[endpoint] = PoolMember(
                                backends[endpoint].base_url, backends[endpoint]
                            )
                    backends[key] = EndpointPool([members[e] for e in dict.fromkeys(endpoints)])
                    # any replica of the model may answer: the set of endpoints names the answers
                    cache_ids[key] = "openai|" + "|".join(
                        sorted({backends[e].base_url for e in endpoints})
                    )
            # (prefix is off: chat completions cannot start the answer for the model)
        else:
            key = f"scripted:{role}"
            backends[key] = ScriptedBackend(
                ScriptedSettings(
                    latency_s=spec.latency_s,
                    latency_jitter=spec.latency_jitter,
                    min_words=spec.min_words,
                    max_words=spec.max_words,
                )
            )
        if spec.faults is not None and not replay:  # this role's calls only; limits shared
            inner, key = key, f"{key}+faults:{role}"
            backends[key] = FaultyBackend(backends[inner], spec.faults)
            aliases[key] = inner
        if not replay and (
            spec.backend == "openai" or spec.rpm or spec.tpm or spec.max_concurrency
        ):
            mine = EndpointLimits(
                rpm=spec.rpm,
                tpm=spec.tpm,
                window_s=spec.rate_window_s,
                max_concurrency=cap,
                start_concurrency=min(16, cap),
            )
            for endpoint in endpoints or [aliases.get(key, key)]:  # each pool member: its own
                limits[endpoint] = _tighter(limits[endpoint], mine) if endpoint in limits else mine
        roles[role] = RoleModel(
            backend=key,
            model=name,
            use_response_prefix=prefix,
            constrained=spec.constrained,  # in replay too: the same requests, the same hashes
            input_price=spec.input_price,
            output_price=spec.output_price,
            params=SamplingParams(
                temperature=spec.temperature,
                top_p=spec.top_p,
                top_k=spec.top_k,
                repetition_penalty=spec.repetition_penalty,
                max_new_tokens=spec.max_new_tokens,
            ),
        )
    layers: dict[str, EndpointLayers] = {
        key: MemberLayers(value, members[key]) if key in members else EndpointLayers(value)
        for key, value in limits.items()
    }
    for key, member in members.items():  # the pool applies them around the member's call
        member.layers = layers[key]
    for key, inner in aliases.items():  # a faulty wrapper goes through its endpoint's limits
        if inner in layers:
            layers[key] = layers[inner]
    return BuiltModels(
        backends=backends,
        roles=roles,
        servers=servers,
        layers=layers,
        cache_ids=cache_ids,
        clients=clients,
    )


def _openai_backend(spec: ModelSpec, role: str, base_url: str, cap: int):
    from prose_sim.models.backends.openai_compat import (
        OpenAIBackend,
        OpenAISettings,
        read_key,
    )

    return OpenAIBackend(
        OpenAISettings(base_url=base_url, api_key_env=spec.api_key_env, max_connections=cap),
        read_key(spec.api_key_env, f"models.{role}"),
    )


def _tighter(a: EndpointLimits, b: EndpointLimits) -> EndpointLimits:
    """Two roles on one endpoint: the stricter of each limit."""

    def low(x, y):
        return y if x is None else x if y is None else min(x, y)

    return EndpointLimits(
        rpm=low(a.rpm, b.rpm),
        tpm=low(a.tpm, b.tpm),
        window_s=max(a.window_s, b.window_s),
        max_concurrency=min(a.max_concurrency, b.max_concurrency),
        start_concurrency=min(a.start_concurrency, b.start_concurrency),
    )


def _local_server(spec: ModelSpec, name: str):
    from prose_sim.models.backends.local import LocalModelServer
    from prose_sim.models.local_loading import load_local_model

    model, tokenizer, device, dtype = load_local_model(name, dtype=spec.dtype, device=spec.device)
    return LocalModelServer(
        model,
        tokenizer,
        device,
        name=name,
        dtype=dtype,
        max_batch_size=spec.max_batch_size,
        max_wait_s=spec.max_wait_s,
    )
