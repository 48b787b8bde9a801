"""``rescore``: judge and measure a finished run again, without simulating it again.

A new run folder is written in which every user, writer and agent answer is served
from the recorded run's log (the replay kind serves those roles, nothing is asked of
their models), and only the judge (its model asked again) and the metrics run, with
the ``[metrics]``, ``[models.judge]`` and judge prompt settings of the rescore. What
would change the simulation itself is refused before anything is written, naming the
keys; a request of a simulating role that the log does not hold is counted, and the
rescore then fails naming the first event where the runs part ways.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import msgspec

from prose_sim.config import RunOptions
from prose_sim.errors import UsageError
from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.kinds.replay import REPLAY_KEY
from prose_sim.models.protocol import ROLES
from prose_sim.models.recorded import RecordedResponses, UnrecordedBackend
from prose_sim.results.collector import ID_COLUMNS
from prose_sim.runfolder import RunFolder
from prose_sim.runtime import resume
from prose_sim.runtime.backends import check_credentials
from prose_sim.runtime.plan import parse_shard
from prose_sim.runtime.prepare import prepare
from prose_sim.runtime.replay import finished_run, first_divergence
from prose_sim.runtime.resume import scenario_changes
from prose_sim.runtime.runner import RunOutcome, execute

JUDGE = "judge"
# the roles whose answers make the simulation: served from the recorded log
SIMULATING = tuple(role for role in ROLES if role != JUDGE)
# what a rescore may change: the judge's model, the metrics and their settings, the
# judge's prompts (checked template by template), and what does not change any answer
RESCORABLE = ("metrics.", f"models.{JUDGE}.", "retry.", "report.", "budget.", "sharding.")
RESCORABLE_KEYS = ("name", "concurrency", "prompts.dir")
JUDGE_TEMPLATES = "judge_"  # the judge's templates' names start with it
# the columns of results.csv that the simulation alone decides: equal in a rescore
SIMULATION_COLUMNS = [c for c in ID_COLUMNS if c != "judge_model"] + [
    "accepted",
    "agent_calls",
    "agent_input_tokens",
    "agent_output_tokens",
]


class RescoreOutcome(msgspec.Struct, kw_only=True):
    run: RunOutcome
    changes: list[str]  # "key: old -> new" for every setting the rescore changed
    judge_calls: int  # answers the judge's model gave (or its response cache)
    answers_from_log: int  # the simulating roles' answers, served from the recorded log
    unrecorded_calls: int  # simulating requests the log held no answer for (0 when faithful)
    difference: str  # the first difference in the simulation's columns or events ("" when none)

    @property
    def faithful(self) -> bool:
        return not self.unrecorded_calls and not self.difference


def rescore_changes(run_dir: Path, overrides: Sequence[str]):
    """The recorded run (finished) and the rescore's scenario; a UsageError naming every
    override that would change the simulation itself."""
    folder = RunFolder(run_dir)
    recorded = folder.load_run()
    run = folder.load_run(list(overrides))
    changes = scenario_changes(recorded.scenario, run.scenario)
    refused = [c for c in changes if not _rescorable(c.partition(":")[0])]
    if refused:
        shown = "; ".join(refused[:5]) + ("; ..." if len(refused) > 5 else "")
        raise UsageError(
            f"--set: a rescore changes only the judge and the metrics ([metrics], "
            f"[models.judge], the judge's templates); these would change the simulation "
            f"itself: {shown}; run the scenario again instead"
        )
    return recorded, run, changes


def _rescorable(key: str) -> bool:
    return key in RESCORABLE_KEYS or key.startswith(RESCORABLE)


def check_templates(
    recorded: dict[str, str], recorded_dir: str, now: dict[str, str], now_dir: str
) -> None:
    """Refuse a template, other than the judge's, that differs from the recorded run's:
    its prompt folder's by name (the folder may move, a judge template may change), its
    personas' own by path (``resume.check_templates``)."""
    before, after = _folder_templates(recorded, recorded_dir), _folder_templates(now, now_dir)
    for name in sorted(before.keys() | after.keys()):
        if not name.startswith(JUDGE_TEMPLATES) and before.get(name) != after.get(name):
            raise UsageError(
                f"prompts.dir: the template {name!r} differs from the recorded run's; a "
                f"rescore may change only the judge's templates ({JUDGE_TEMPLATES}*.j2)"
            )
    resume.check_templates(_other_templates(recorded, recorded_dir), _other_templates(now, now_dir))


def _in(path: str, folder: str) -> bool:
    return bool(folder) and Path(path).parent == Path(folder)


def _folder_templates(templates: dict[str, str], folder: str) -> dict[str, str]:
    """Template name -> hash, of a run's prompt folder's templates."""
    return {Path(p).name.removesuffix(".j2"): h for p, h in templates.items() if _in(p, folder)}


def _other_templates(templates: dict[str, str], folder: str) -> dict[str, str]:
    """Path -> hash, of the templates outside the prompt folder (the personas' own)."""
    return {p: h for p, h in templates.items() if not _in(p, folder)}


async def rescore_run(
    run_dir: Path,
    out: Path,
    overrides: Sequence[str] = (),
    *,
    progress: str = "auto",
    use_cache: bool = True,
) -> RescoreOutcome:
    """Judge and measure ``run_dir``'s finished run again into the new folder ``out``."""
    prior = finished_run(run_dir, out, templates=False)  # the judge's may have changed
    assert prior.started is not None  # a finished run has begun
    recorded_run, run, changes = rescore_changes(run_dir, overrides)
    check_templates(
        prior.started.templates,
        recorded_run.scenario.prompts.dir,
        run.template_hashes(),
        run.scenario.prompts.dir,
    )
    check_credentials(run.scenario, f"{run_dir}/scenario.toml", roles=(JUDGE,))
    recorded = RecordedResponses.from_events(prior.events, failures=True, roles=SIMULATING)
    options = RunOptions(
        progress=progress,  # type: ignore[arg-type]
        use_cache=use_cache,
        shard=parse_shard(prior.started.shard) if prior.started.shard else None,
    )
    prepared = prepare(
        run,
        out,
        options,
        replay=recorded,
        replay_roles=SIMULATING,
        derived_from=f"{run_dir.name} {prior.started.scenario_digest}",
    )
    outcome = await execute(prepared)
    unrecorded = prepared.built.backends[REPLAY_KEY]
    assert isinstance(unrecorded, UnrecordedBackend)
    difference = simulation_difference(RunFolder(run_dir).results(), RunFolder(out).results())
    if unrecorded.calls and not difference:
        replayed, _ = RunFolder(out).read_log()
        difference = first_divergence(
            [e for e in prior.events if not _judges(e)],
            [e for e in replayed if not _judges(e)],
        ) or ("requests the log does not hold")
    judge_calls = sum(int(u["calls"]) for u in outcome.usage if u["role"] == JUDGE)  # type: ignore[call-overload]
    return RescoreOutcome(
        run=outcome,
        changes=changes,
        judge_calls=judge_calls,
        answers_from_log=outcome.answers_from_log,
        unrecorded_calls=unrecorded.calls,
        difference=difference,
    )


def _judges(event: Event) -> bool:
    """Whether an event is the judge's model traffic (which a rescore changes on purpose)."""
    match event:
        case ModelRequested(role=role) | ModelResponded(role=role) | ModelFailed(role=role):
            return role == JUDGE
    return False


def simulation_difference(recorded: bytes, rescored: bytes) -> str:
    """The first task instance whose simulation columns differ between two results.csv
    files ("" when none): a rescore changes only the judge's and the metrics' columns."""
    old, new = _rows(recorded), _rows(rescored)
    if old.keys() != new.keys():
        missing = sorted(old.keys() - new.keys()) or sorted(new.keys() - old.keys())
        return f"the task instances differ (first: {'/'.join(missing[0])})"
    for key, row in old.items():
        for column in SIMULATION_COLUMNS:
            if row.get(column) != new[key].get(column):
                return (
                    f"{'/'.join(key)}: {column} is {row.get(column)!r} in the recorded run, "
                    f"{new[key].get(column)!r} rescored"
                )
    return ""


def _rows(data: bytes) -> dict[tuple[str, ...], dict[str, str]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    key_columns = ("task", "framework", "method", "seed", "user", "instance")
    return {tuple(row.get(c, "") for c in key_columns): row for row in reader}
