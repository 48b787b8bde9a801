"""``merge``: join the run folders of a sharded grid into one run folder.

The shards (``run --shard K/N``) must come from the same scenario, share one N,
cover every K exactly once and have finished. The merged folder holds the
scenario, one event log (a fresh ``run_started`` for the whole grid, every
shard's episode events in shard order, one ``run_finished``), and the
``results.csv`` rebuilt from it, so ``report``, ``view``, ``replay`` and
``rescore`` accept it like any run.

Every check comes first, reading of each shard only its first and last events
and its scenario file (the first shard's scenario is loaded and checked against
its log, the others' files must equal it); then the logs are streamed one after
the other into the merged one. Time and memory are linear in the shards' size,
whatever their number.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from prose_sim import __version__
from prose_sim.errors import UsageError
from prose_sim.events import Event, RunFinished, RunStarted
from prose_sim.results.collector import ResultsCollector
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.plan import parse_shard
from prose_sim.runtime.resume import load_prior


class Shard(msgspec.Struct, frozen=True):
    folder: Path
    k: int
    n: int
    started: RunStarted
    finished: RunFinished


def merge_runs(run_dirs: list[Path], out: Path) -> ResultsCollector:
    shards = check_shards(run_dirs)
    merged = RunFolder(out)
    merged.check_new()
    lock = merged.claim(new=True)
    try:
        return _join(shards, merged)
    finally:
        lock.release()


def _join(shards: list[Shard], merged: RunFolder) -> ResultsCollector:
    first = shards[0].started
    merged.copy_scenario_from(RunFolder(shards[0].folder))
    collector = ResultsCollector()
    writer = merged.log_writer()
    run_id = merged.path.name

    def emit(event: Event) -> None:
        writer.write(event)
        collector.observe(event)

    try:
        emit(
            RunStarted(
                run_id=run_id,
                episode_id="",
                seq=0,
                ts=time.time(),
                scenario_name=first.scenario_name,
                scenario_digest=first.scenario_digest,
                personas_digest=first.personas_digest,
                prompts_dir=first.prompts_dir,
                templates=first.templates,
                scenario=first.scenario,
                personas=first.personas,
                episodes=sum(s.started.episodes for s in shards),
                version=__version__,
            )
        )
        for shard in shards:
            for event in RunFolder(shard.folder).events():
                if event.episode_id:  # run-level events belong to their shard's run
                    emit(event)
        failed = sum(s.finished.episodes_failed for s in shards)
        emit(
            RunFinished(
                run_id=run_id,
                episode_id="",
                seq=1,
                ts=time.time(),
                status="completed" if not failed else "failed",
                wall_s=max(s.finished.wall_s for s in shards),
                episodes_completed=sum(s.finished.episodes_completed for s in shards),
                episodes_failed=failed,
            )
        )
    finally:
        writer.close()
    merged.write_results(collector.results_csv().encode())
    return collector


def check_shards(run_dirs: list[Path]) -> list[Shard]:
    """The shards in K order, every check passed: each a finished shard of one grid (the same
    scenario, one N), every K once. A UsageError names the folder, or the shards missing and
    given twice."""
    if not run_dirs:
        raise UsageError("merge needs at least one run folder")
    shards = [_shard(Path(d)) for d in run_dirs]
    counts = sorted({s.n for s in shards})
    if len(counts) > 1:
        raise UsageError(
            f"the shards split the grid differently (N = {counts}): "
            + "; ".join(f"{s.folder} is {s.k}/{s.n}" for s in shards if s.n != shards[0].n)[:300]
        )
    n = counts[0]
    by_k: dict[int, list[Shard]] = {}
    for shard in shards:
        by_k.setdefault(shard.k, []).append(shard)
    missing = [k for k in range(1, n + 1) if k not in by_k]
    twice = {k: found for k, found in by_k.items() if len(found) > 1}
    if missing or twice:
        parts = []
        if missing:
            parts.append(f"missing {_ranges(missing)}")
        for k, found in sorted(twice.items())[:5]:
            parts.append(f"{k}/{n} given twice ({', '.join(str(s.folder) for s in found)})")
        raise UsageError(f"the shards do not cover the grid once (of {n}): " + "; ".join(parts))
    ordered = [by_k[k][0] for k in range(1, n + 1)]
    _check_one_scenario(ordered)
    return ordered


def _shard(folder: Path) -> Shard:
    run = RunFolder(folder)
    run.require_run()
    started = run.started()
    if started is None or not started.shard:
        raise UsageError(f"{folder}: not a shard (run it with --shard K/N)")
    last = run.last_event()
    if not isinstance(last, RunFinished):
        raise UsageError(
            f"{folder}: the shard did not finish; resume it first (run --resume {folder})"
        )
    k, n = parse_shard(started.shard)
    return Shard(folder=folder, k=k, n=n, started=started, finished=last)


def _check_one_scenario(shards: list[Shard]) -> None:
    """The shards' scenario: the first shard's, loaded and checked against its log (an edited
    file is refused); every other shard's recorded digest and scenario file equal to it."""
    first = shards[0]
    load_prior(first.folder)
    scenario = RunFolder(first.folder).scenario_path.read_bytes()
    for shard in shards[1:]:
        if shard.started.scenario_digest != first.started.scenario_digest:
            raise UsageError(
                f"{shard.folder}: comes from another scenario than {first.folder} "
                f"(scenario digest {shard.started.scenario_digest}, not {first.started.scenario_digest})"
            )
        if RunFolder(shard.folder).scenario_path.read_bytes() != scenario:
            raise UsageError(
                f"{shard.folder}/scenario.toml: differs from {first.folder}'s; restore it to merge"
            )


def _ranges(ks: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out: list[str] = []
    start = prev = ks[0]
    for k in [*ks[1:], None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if k is not None:
            start = prev = k
    return ", ".join(out)
