"""How one run is run: the options of ``run`` that are not the scenario's."""

from __future__ import annotations

from typing import Literal

import msgspec

from prose_sim.config.common import Positive


class RunOptions(msgspec.Struct, frozen=True, kw_only=True):
    # episodes in flight at once (default: the scenario's, else all)
    concurrency: Positive | None = None
    # auto: a bar on a terminal, log lines otherwise
    progress: Literal["auto", "bar", "log", "off"] = "auto"
    # answer requests to cacheable backends (openai) from the response cache, and store
    # their answers in it; cache_path: the cache file (default: <cache dir>/responses.sqlite3)
    use_cache: bool = True
    cache_path: str | None = None
    # (K, N): shard K of N of the grid (``merge`` joins the shards' folders)
    shard: tuple[int, int] | None = None
    # where the judges' text metrics are computed off the event loop (metrics.offloop):
    # auto, the run's worker process from 64 episodes in flight on two cores or more, else a
    # worker thread; results are the same either way
    metrics_worker: Literal["auto", "thread", "process"] = "auto"
