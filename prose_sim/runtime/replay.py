"""``replay``: run a recorded scenario again, every answer taken from its log.

No model is called: the gateway serves each request the recorded answer (or
failure) it got, matched by episode, purpose, request hash and occurrence;
anything the log lacks goes to a backend that refuses, and is counted. The
replayed ``results.csv`` must equal the recorded one byte for byte; when it
does not, the first event where the two logs part ways is named.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import msgspec

from prose_sim.config import RunOptions
from prose_sim.errors import UsageError, cut
from prose_sim.events import EpisodeStarted, Event, RunFinished
from prose_sim.models.kinds.replay import REPLAY_KEY
from prose_sim.models.recorded import RecordedResponses, UnrecordedBackend
from prose_sim.runfolder import RunFolder
from prose_sim.runtime.plan import parse_shard
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.resume import PriorRun, load_prior
from prose_sim.runtime.runner import RunOutcome, execute

# fields that differ between any two runs of the same thing; ``seq`` too, since
# concurrent steps of one instance (the judge's questions, a validation sweep)
# may interleave differently: events are compared instance by instance
_END = 1 << 30
VOLATILE = {"run_id", "ts", "request_id", "wall_s", "seq"}


class ReplayOutcome(msgspec.Struct, kw_only=True):
    identical: bool
    unrecorded_calls: int  # requests the log held no answer for (0 in a faithful replay)
    divergence: str  # the first differing event, "" when none
    run: RunOutcome


async def replay_run(run_dir: Path, out: Path, progress: str = "auto") -> ReplayOutcome:
    prior = finished_run(run_dir, out)
    assert prior.started is not None  # a finished run has begun
    recorded = RecordedResponses.from_events(prior.events, failures=True)
    options = RunOptions(
        progress=progress,  # type: ignore[arg-type]
        use_cache=False,
        shard=parse_shard(prior.started.shard) if prior.started.shard else None,
    )
    prepared = prepare(prior.run, out, options, replay=recorded)
    outcome = await execute(prepared)
    unrecorded = prepared.built.backends[REPLAY_KEY]
    assert isinstance(unrecorded, UnrecordedBackend)
    same = RunFolder(run_dir).results() == RunFolder(out).results()
    divergence = ""
    if not same or unrecorded.calls:
        replayed, _ = RunFolder(out).read_log()
        divergence = (
            first_divergence(prior.events, replayed) or "the logs agree, but results.csv differs"
        )
    return ReplayOutcome(
        identical=same and not unrecorded.calls,
        unrecorded_calls=unrecorded.calls,
        divergence=divergence,
        run=outcome,
    )


def finished_run(run_dir: Path, out: Path, *, templates: bool = True) -> PriorRun:
    """The recorded run, refused unless it finished and ``out`` is another folder.
    ``templates``: refuse a template of the user's that changed since (a rescore checks
    them itself: the judge's may change)."""
    prior = load_prior(run_dir, templates=templates)
    if prior.torn is not None or prior.started is None or not _finished(prior.events):
        raise UsageError(
            f"{run_dir}: the run did not finish; resume it first (run --resume {run_dir})"
        )
    if out.resolve() == run_dir.resolve():
        raise UsageError("--out must be another folder than the recorded run's")
    return prior


def _finished(events: list[Event]) -> bool:
    return any(isinstance(e, RunFinished) for e in events)


def first_divergence(recorded: list[Event], replayed: list[Event]) -> str | None:
    """The first event where two logs differ: episode by episode, instance by
    instance, each instance's events in a canonical order."""
    a, b = _by_instance(recorded), _by_instance(replayed)
    for episode, instance in sorted(a.keys() | b.keys()):
        left, right = a.get((episode, instance), []), b.get((episode, instance), [])
        for x, y in zip(left + [None] * len(right), right + [None] * len(left)):
            if x != y:
                where = f"episode {episode}" + (
                    f", instance {instance}" if 0 <= instance < _END else ""
                )
                return f"{where}: recorded {_describe(x, y)}; replayed {_describe(y, x)}"
    return None


def _by_instance(events: list[Event]) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for event in events:
        if event.episode_id:
            fields = {k: v for k, v in msgspec.to_builtins(event).items() if k not in VOLATILE}
            # episode-level events: its start before its instances, its end after them
            instance = getattr(event, "instance", -1 if isinstance(event, EpisodeStarted) else _END)
            out[(event.episode_id, instance)].append(fields)
    return {key: sorted(items, key=_canonical) for key, items in out.items()}


# within an instance, model traffic first: a changed request is the usual root cause
_RANK = {"model_requested": 0, "model_responded": 1, "model_failed": 2, "parse_failed": 3}


def _canonical(fields: dict) -> tuple[int, bytes]:
    return _RANK.get(fields["kind"], 9), msgspec.json.encode(fields)


def _describe(event: dict | None, other: dict | None) -> str:
    if event is None:
        return "nothing"
    if other is None or other.get("kind") != event.get("kind"):
        return str(event.get("kind"))
    differing = [k for k in event if event.get(k) != other.get(k)]
    parts = ", ".join(f"{k}={_short(event[k])}" for k in differing[:3])
    return f"{event['kind']} ({parts})"


def _short(value: object) -> str:
    return cut(repr(value), 80)
