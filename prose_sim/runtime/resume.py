"""What a recorded run folder holds, for ``run --resume`` and ``replay``.

Resume keeps the events of the episodes that finished whole (every instance
ok) and runs the others
again from their start, with every answer those episodes had already been
given served from the log (so nothing paid for is asked again, and the
inferrer's memory is rebuilt by the same steps that built it). Their old
events are dropped from the log, so no task instance appears twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from prose_sim.config import Scenario
from prose_sim.errors import UsageError
from prose_sim.eventlog import TornTail
from prose_sim.events import EpisodeFinished, Event, RunFinished, RunStarted
from prose_sim.models.recorded import RecordedResponses
from prose_sim.runfolder import RunFolder
from prose_sim.runfolder.legacy import flat_digest
from prose_sim.scenario.loading import flatten_settings, load_run, run_from_dict
from prose_sim.world.assembly import ResolvedRun


class Extension(msgspec.Struct, frozen=True, kw_only=True):
    """A run continued as a run of a larger scenario (``runtime.extend``)."""

    added: str  # what the larger scenario adds, in words
    # finished episodes that the larger grid changes: they run again, served from the log
    regrown: frozenset[str] = frozenset()


class PriorRun(msgspec.Struct, kw_only=True):
    run_dir: Path
    run: ResolvedRun  # the run's scenario, checked and assembled again (an extension's: the larger)
    events: list[Event]
    torn: TornTail | None
    started: RunStarted | None
    extension: Extension | None = None
    # scenario.toml is older than the log's RunStarted: an extension was interrupted between
    # rewriting the log and the scenario file; the runner writes it again
    stale_scenario: bool = False

    @property
    def scenario(self) -> Scenario:
        return self.run.scenario

    @property
    def finished(self) -> dict[str, str]:
        """Episode id -> status, for the episodes that finished with every instance ok.

        An episode that failed, or finished with failed instances (a model that
        kept failing, a breaker that tripped), runs again: what failed may be
        fixed by now, and its answers that were given are served from the log.
        """
        regrown = self.extension.regrown if self.extension is not None else frozenset()
        return {
            e.episode_id: e.status
            for e in self.events
            if isinstance(e, EpisodeFinished)
            and e.status == "completed"
            and not e.instances_failed
            and e.episode_id not in regrown
        }

    @property
    def nothing_to_resume(self) -> bool:
        """Whether the run ended whole: its log closed, every episode finished with every
        instance ok, its results written. Resuming it would change nothing, so it is not
        resumed (a finished run that lost its results.csv or summary.json gets them back)."""
        return (
            self.extension is None
            and not self.stale_scenario
            and self.torn is None
            and RunFolder(self.run_dir).summary_path.is_file()
            and RunFolder(self.run_dir).results_path.is_file()
            and self.started is not None
            and any(isinstance(e, RunFinished) for e in self.events)
            and len(self.finished) >= self.started.episodes
        )

    def kept_events(self) -> list[Event]:
        """Run-level events and those of finished episodes (an old RunFinished is dropped)."""
        done = self.finished
        return [
            e
            for e in self.events
            if (e.episode_id == "" and not isinstance(e, RunFinished)) or e.episode_id in done
        ]

    def recorded_answers(self) -> RecordedResponses:
        """The answers of the unfinished episodes, to serve again (failures are retried)."""
        done = self.finished
        unfinished = {
            e.episode_id for e in self.events if e.episode_id and e.episode_id not in done
        }
        return RecordedResponses.from_events(self.events, unfinished)


def load_prior(
    run_dir: Path,
    scenario_path: Path | None = None,
    overrides: Sequence[str] = (),
    *,
    templates: bool = True,
) -> PriorRun:
    """Read a run folder; refuse (naming what changed) a scenario that differs from the run's,
    and (``templates``) a template of the user's that changed since the run began."""
    folder = RunFolder(run_dir)
    recorded_run = folder.load_run()
    recorded_path = folder.scenario_path
    recorded = recorded_run.scenario
    events, torn = folder.read_log()
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    stale = False
    if started is not None and started.scenario_digest not in (
        recorded.digest(),
        flat_digest(recorded),  # a run begun by a version with flat settings tables
    ):
        if not (started.extended_from and started.extended_from[-1] == recorded.digest()):
            raise UsageError(
                f"{recorded_path}: was edited after the run began; restore it to resume"
            )
        # an extension stopped before it wrote the larger scenario's file: the log has it
        recorded_run = run_from_dict(started.scenario, str(recorded_path), base_dir=run_dir)
        recorded, stale = recorded_run.scenario, True
    if (
        started is not None
        and started.personas_digest
        and started.personas_digest != recorded_run.personas_digest()
    ):
        raise UsageError(
            f"{run_dir}: the personas the run uses changed since it began (a persona file or an "
            f"installed plugin: {', '.join(recorded.persona_files) or 'plugins'}); restore them to resume"
        )
    if templates and started is not None and started.templates:
        check_templates(started.templates, recorded_run.template_hashes())
    run = recorded_run
    if scenario_path is not None or overrides:
        run = (
            load_run(scenario_path, list(overrides))
            if scenario_path is not None
            else folder.load_run(list(overrides))
        )
        changed = scenario_changes(recorded, run.scenario)
        if changed:
            raise UsageError(
                f"{scenario_path or recorded_path}: differs from the run's scenario "
                f"({'; '.join(changed[:5])}{'; ...' if len(changed) > 5 else ''}); "
                f"a resumed run must keep its scenario"
            )
    return PriorRun(
        run_dir=run_dir, run=run, events=events, torn=torn, started=started, stale_scenario=stale
    )


def check_templates(recorded: dict[str, str], now: dict[str, str]) -> None:
    """Refuse (one line naming it) a template of the user's that changed since the run began."""
    for path in sorted(recorded.keys() | now.keys()):
        before, after = recorded.get(path), now.get(path)
        if before == after:
            continue
        if before is None:
            what = "is new since the run began"
        elif after is None or after == "missing":
            what = "is gone since the run began"
        else:
            what = f"changed since the run began (hash {before}, now {after})"
        raise UsageError(f"{path}: the template {what}; restore it to resume or replay the run")


def scenario_changes(old: Scenario, new: Scenario) -> list[str]:
    """``key: old -> new`` for every setting that differs."""
    a, b = (flatten_settings(msgspec.to_builtins(s), into_lists=False) for s in (old, new))
    return [
        f"{k}: {a.get(k)!r} in the run, {b.get(k)!r} now"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]
