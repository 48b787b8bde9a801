"""Building the model backends a scenario names, once per run.

Roles that name the same local model (and dtype, device and batching) share
one model server, so their requests are batched together.
"""

from __future__ import annotations

from prose_sim.models.backends.scripted import ScriptedBackend, ScriptedSettings
from prose_sim.models.gateway import RoleModel
from prose_sim.models.protocol import ROLES, Backend, SamplingParams
from prose_sim.scenario import ModelSpec, Scenario

EMBEDDED_DEFAULT = "smollm2-135m-instruct"


def model_name(spec: ModelSpec) -> str:
    if spec.model:
        return spec.model
    return EMBEDDED_DEFAULT if spec.backend == "local" else spec.backend


def build_models(scenario: Scenario) -> tuple[dict[str, Backend], dict[str, RoleModel], list]:
    """(backends by key, what serves each role, local servers to run)."""
    backends: dict[str, Backend] = {}
    roles: dict[str, RoleModel] = {}
    servers = []
    for role in ROLES:
        spec: ModelSpec = getattr(scenario.models, role)
        name = model_name(spec)
        if spec.backend == "local":
            key = f"local:{name}:{spec.dtype}:{spec.device}:{spec.max_batch_size}:{spec.max_wait_s}"
            if key not in backends:
                backends[key] = _local_server(spec, name)
                servers.append(backends[key])
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
        roles[role] = RoleModel(
            backend=key,
            model=name,
            use_response_prefix=spec.response_prefix,
            params=SamplingParams(
                temperature=spec.temperature,
                top_p=spec.top_p,
                top_k=spec.top_k,
                repetition_penalty=spec.repetition_penalty,
                max_new_tokens=spec.max_new_tokens,
            ),
        )
    return backends, roles, servers


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
