"""``backend = "openai"``: any OpenAI-compatible chat-completions endpoint.

Roles that name the same endpoint (base_url and key variable) share one
client, hence one set of rate limits and one adaptive concurrency cap. A role
with several endpoints (``base_urls``) is served by an ``EndpointPool`` over
them (shared by the roles naming the same list and key variable); each
endpoint is a member with its own client and its own limits (the role's rpm,
tpm and max_concurrency each), which the pool applies, not the gateway.
"""

from __future__ import annotations

from prose_sim.config.models import ModelSpec, OpenAISpec
from prose_sim.models.registry import BackendKind, Parts, Served


class OpenAIKind(BackendKind):
    # chat completions cannot start the answer for the model
    response_prefix = False
    limited = True  # a remote endpoint: its limits and the adaptive cap always apply
    spec_type = OpenAISpec

    def problem(self, spec: ModelSpec) -> tuple[str, str] | None:
        assert isinstance(spec, OpenAISpec)
        if not spec.model:
            return "model", "required for backend 'openai' (e.g. \"gpt-4o\")"
        if spec.base_urls and spec.base_url:
            return "base_urls", "give base_url (one endpoint) or base_urls (several), not both"
        return None

    def check(self, spec: ModelSpec, where: str) -> None:
        assert isinstance(spec, OpenAISpec)
        from prose_sim.errors import UsageError
        from prose_sim.models.backends.openai_compat import (
            read_key,
            resolve_server,
            sampling_problem,
        )

        kinds = {resolve_server(spec.server, url) for url in spec.base_urls or [spec.base_url]}
        params = {"top_k": spec.top_k, "repetition_penalty": spec.repetition_penalty}
        for kind in sorted(kinds):  # a server that rejects top_k: exit 2 before the run starts
            problem = sampling_problem(kind, params, where)
            if problem:
                raise UsageError(problem)
        read_key(spec.api_key_env, where)

    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        assert isinstance(spec, OpenAISpec)
        from prose_sim.models.backends.openai_compat import (
            OpenAIBackend,
            OpenAISettings,
            read_key,
        )
        from prose_sim.models.backends.pool import EndpointPool, PoolMember

        cap = spec.max_concurrency or parts.concurrency
        urls = spec.base_urls or [spec.base_url]
        endpoints = [f"openai:{url}:{spec.api_key_env}" for url in urls]
        clients: dict[str, OpenAIBackend] = {}
        for url, endpoint in zip(urls, endpoints):  # one client per endpoint
            known = parts.backends.get(endpoint)
            if isinstance(known, OpenAIBackend):
                clients[endpoint] = known
                continue
            settings = OpenAISettings(
                base_url=url, api_key_env=spec.api_key_env, max_connections=cap, server=spec.server
            )
            client = OpenAIBackend(settings, read_key(spec.api_key_env, f"models.{role}"))
            parts.add(endpoint, client, cache_id=client.cache_identity)
            clients[endpoint] = client
        if not spec.base_urls:
            return Served(key=endpoints[0])
        # several endpoints: one pool over them, each a member with its own limits
        key = f"openai-pool:{','.join(urls)}:{spec.api_key_env}"
        if key not in parts.backends:
            for endpoint in endpoints:
                if endpoint not in parts.members:
                    parts.members[endpoint] = PoolMember(
                        clients[endpoint].base_url, clients[endpoint]
                    )
            pool = EndpointPool([parts.members[e] for e in dict.fromkeys(endpoints)])
            # any replica of the model may answer: the set of endpoints names the answers
            identity = "openai|" + "|".join(sorted({clients[e].base_url for e in endpoints}))
            parts.add(key, pool, cache_id=identity)
        return Served(key=key, endpoints=endpoints)
