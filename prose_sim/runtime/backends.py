"""Building the model backends a scenario names, once per run.

Each role's ``backend`` names a kind (``prose_sim.models.registry``), which
builds what serves the role, shared with other roles where it should be (one
local model server per model, one HTTP client per endpoint). Here, for every
kind alike: fault injection around a role's backend, each endpoint's limits
(the stricter of the roles' where they share one), and replay, where one
backend that holds nothing serves every role.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import msgspec

from prose_sim.config import ModelSpec, Scenario
from prose_sim.models.backends.faulty import FaultyBackend
from prose_sim.models.backends.pool import MemberLayers
from prose_sim.models.gateway import RoleModel
from prose_sim.models.kinds.replay import ReplayKind
from prose_sim.models.limits import EndpointLayers, EndpointLimits, shard_divisor, shard_share
from prose_sim.models.protocol import ROLES, Backend, ModelServer, SamplingParams
from prose_sim.models.registry import Parts, backend_kind


class BuiltModels(msgspec.Struct, kw_only=True):
    backends: dict[str, Backend]
    roles: dict[str, RoleModel]
    servers: list[ModelServer]  # local model servers to run for the whole run
    # by backend key; endpoints share one. A pool's members are here under their own
    # endpoint keys (MemberLayers, applied by the pool); the pool's key has none
    layers: dict[str, EndpointLayers]
    cache_ids: dict[str, str]  # by backend key: backends whose answers may be cached
    # every backend built here, each once, in the order built: what ``aclose`` closes
    # (not backends the caller adds to ``backends`` later)
    built: list[Backend] = []

    def with_given(self, given: Mapping[str, Backend]) -> BuiltModels:
        """These models with the roles in ``given`` (tests' doubles, by role) routed to those
        backends instead (which ``aclose`` does not close: they are the caller's)."""
        if not given:
            return self
        backends, roles = dict(self.backends), dict(self.roles)
        for role, backend in given.items():
            backends[f"given:{role}"] = backend
            roles[role] = msgspec.structs.replace(roles[role], backend=f"given:{role}")
        return msgspec.structs.replace(self, backends=backends, roles=roles)

    async def aclose(self) -> None:
        """Close every backend built here, wrappers first; each is closed even when
        another fails (the first failure is raised after)."""
        failure: Exception | None = None
        for backend in reversed(self.built):
            try:
                await backend.aclose()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


REPLAY = ReplayKind()


def check_credentials(
    scenario: Scenario, where: str = "scenario", roles: Collection[str] = ROLES
) -> None:
    """Raise a UsageError naming how to fix it when a role's backend cannot start (an
    openai model whose key is not set); nothing is built. ``roles``: those that will call
    their models (a rescore's judge)."""
    for role in roles:
        spec: ModelSpec = scenario.models.of(role)
        backend_kind(spec.backend).check(spec, f"{where}: models.{role}")


def build_models(
    scenario: Scenario,
    concurrency: int | None = None,
    replay: Collection[str] = (),
    shard: tuple[int, int] | None = None,
) -> BuiltModels:
    """The backends, role models and shared layers a scenario names.

    An openai model whose key is not set raises a UsageError here, before the
    runner writes anything.

    ``concurrency`` (the run's episodes in flight) sizes the HTTP pools and the
    adaptive concurrency caps where ``max_concurrency`` is not set.

    ``replay``: these roles (``ROLES`` for a replay; every role but the judge for a
    rescore) keep their model names, sampling and prefixes (hence the same requests) and
    are served by the replay kind (``models.kinds.replay``: answers come from the
    recorded log); no model is loaded and no key is read for them.

    ``shard`` (K, N): this run is shard K of N, and takes 1/N of each endpoint's limits
    (``models.limits.shard_share``) unless ``[sharding] split_limits = false``.
    """
    default_cap = max(1, concurrency or scenario.concurrency or 100)
    parts = Parts(default_cap)
    roles: dict[str, RoleModel] = {}
    limits: dict[str, EndpointLimits] = {}
    aliases: dict[str, str] = {}  # fault-injecting wrapper key -> the wrapped backend's key
    shards = shard_divisor(shard, scenario.sharding)
    for role in ROLES:
        spec: ModelSpec = scenario.models.of(role)
        kind = backend_kind(spec.backend)
        name = spec.model or kind.default_model or spec.backend
        cap = spec.max_concurrency or default_cap
        replayed = role in replay
        served = (REPLAY if replayed else kind).build(role, spec, name, parts)
        key = served.key
        if spec.faults is not None and not replayed:  # this role's calls only; limits shared
            inner, key = key, f"{key}+faults:{role}"
            parts.add(key, FaultyBackend(parts.backends[inner], spec.faults))
            aliases[key] = inner
        if not replayed and (kind.limited or spec.rpm or spec.tpm or spec.max_concurrency):
            mine = EndpointLimits(
                rpm=spec.rpm,
                tpm=spec.tpm,
                window_s=spec.rate_window_s,
                max_concurrency=cap,
                start_concurrency=min(16, cap),
            )
            mine = shard_share(mine, shards, cap_set=spec.max_concurrency is not None)
            # each pool member: its own
            for endpoint in served.endpoints or [aliases.get(key, key)]:
                limits[endpoint] = _tighter(limits[endpoint], mine) if endpoint in limits else mine
        roles[role] = RoleModel(
            backend=key,
            model=name,
            use_response_prefix=spec.response_prefix and kind.response_prefix,
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
    members = parts.members
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
        backends=parts.backends,
        roles=roles,
        servers=parts.servers,
        layers=layers,
        cache_ids=parts.cache_ids,
        built=list({id(b): b for b in parts.backends.values()}.values()),
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
        divided_by=max(a.divided_by, b.divided_by),
    )
