"""``merge``: join the run folders of a sharded grid into one run folder.

The shards (``run --shard K/N``) must come from the same scenario, share one N,
cover every K exactly once and have finished. The merged folder holds the
scenario, one event log (a fresh ``run_started`` for the whole grid, every
shard's episode events in shard order, one ``run_finished``), and the
``results.csv`` rebuilt from it, so ``report`` and ``replay`` accept it like
any run.
"""

from __future__ import annotations

import time
from pathlib import Path

from prose_sim import __version__
from prose_sim.errors import UsageError
from prose_sim.events import Event, RunFinished, RunStarted
from prose_sim.results.collector import ResultsCollector
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.plan import parse_shard
from prose_sim.runtime.resume import PriorRun, load_prior


def merge_runs(run_dirs: list[Path], out: Path) -> ResultsCollector:
    shards = [load_prior(d) for d in run_dirs]
    _check(shards)
    merged = RunFolder(out)
    if merged.log_path.exists():
        raise UsageError(f"{out}: already holds a run (events.jsonl); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    shards.sort(key=lambda p: parse_shard(_started(p).shard)[0])
    first = shards[0]
    merged.copy_scenario_from(RunFolder(first.run_dir))
    collector = ResultsCollector()
    writer = merged.log_writer()
    run_id = out.name
    episodes = sum(_started(p).episodes for p in shards)
    finals = [next(e for e in reversed(p.events) if isinstance(e, RunFinished)) for p in shards]

    def emit(event: Event) -> None:
        writer.write(event)
        collector.observe(event)

    emit(
        RunStarted(
            run_id=run_id,
            episode_id="",
            seq=0,
            ts=time.time(),
            scenario_name=_started(first).scenario_name,
            scenario_digest=_started(first).scenario_digest,
            personas_digest=_started(first).personas_digest,
            scenario=_started(first).scenario,
            personas=_started(first).personas,
            episodes=episodes,
            version=__version__,
        )
    )
    for shard in shards:
        for event in shard.events:
            if event.episode_id:  # run-level events belong to their shard's run
                emit(event)
    failed = sum(f.episodes_failed for f in finals)
    emit(
        RunFinished(
            run_id=run_id,
            episode_id="",
            seq=1,
            ts=time.time(),
            status="completed" if not failed else "failed",
            wall_s=max(f.wall_s for f in finals),
            episodes_completed=sum(f.episodes_completed for f in finals),
            episodes_failed=failed,
        )
    )
    writer.close()
    merged.write_results(collector.results_csv().encode())
    return collector


def _started(shard: PriorRun) -> RunStarted:
    """A shard's ``RunStarted`` (``_check`` refused a folder without one)."""
    if shard.started is None:
        raise UsageError(f"{shard.run_dir}: not a shard (run it with --shard K/N)")
    return shard.started


def _check(shards: list[PriorRun]) -> None:
    if not shards:
        raise UsageError("merge needs at least one run folder")
    for p in shards:
        if p.started is None or not p.started.shard:
            raise UsageError(f"{p.run_dir}: not a shard (run it with --shard K/N)")
        if p.torn is not None or not any(isinstance(e, RunFinished) for e in p.events):
            raise UsageError(
                f"{p.run_dir}: the shard did not finish; resume it first (run --resume {p.run_dir})"
            )
    digests = {_started(p).scenario_digest for p in shards}
    if len(digests) > 1:
        raise UsageError("the shards come from different scenarios (their scenario digests differ)")
    counts = {parse_shard(_started(p).shard)[1] for p in shards}
    if len(counts) > 1:
        raise UsageError(f"the shards split the grid differently (N = {sorted(counts)})")
    n = counts.pop()
    ks = sorted(parse_shard(_started(p).shard)[0] for p in shards)
    if ks != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(ks))
        duplicated = sorted({k for k in ks if ks.count(k) > 1})
        raise UsageError(
            f"the shards do not cover the grid once: missing {missing or 'none'}, "
            f"given twice {duplicated or 'none'} (of {n})"
        )
