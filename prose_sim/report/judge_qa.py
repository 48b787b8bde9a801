"""Every judge question of a run, with its answer and score, for human checking.

Built from the event log: each ``JudgeVerdict`` is joined with the model call
that asked it (question and answer) and with its episode and instance (who,
which method, which draft). It also measures how often the judge agrees with
the deterministic checker of a component.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import TypedDict

import msgspec

from prose_sim.events import (
    EpisodeStarted,
    Event,
    InstanceStarted,
    JudgeVerdict,
    ModelRequested,
    ModelResponded,
)
from prose_sim.untrusted import csv_row

QA_COLUMNS = [
    "task",
    "framework",
    "method",
    "agent_model",
    "judge_model",
    "seed",
    "user",
    "instance",
    "metric",
    "component",
    "score",
    "parsed",
    "checker",
    "checked",
    "question",
    "answer",
]


class QARow(TypedDict):
    """One line of ``judge_qa.csv`` (its columns: ``QA_COLUMNS``)."""

    task: str
    framework: str
    method: str
    agent_model: str
    judge_model: str
    seed: int
    user: str
    instance: int
    metric: str
    component: str
    score: float
    parsed: bool
    checker: str
    checked: bool | str  # "" when no checker decides the component
    question: str
    answer: str


class Agreement(msgspec.Struct, kw_only=True):
    """Judge vs checker on one component: the judge 'agrees' when its PPCM score
    is positive exactly when the checker passes. Only parsed verdicts count as
    the judge's opinion (an unparsed one scores 0 and would 'agree' with every
    failed check); with none, there is no agreement to show."""

    task: str
    component: str
    checker: str
    judged: int = 0  # verdicts, parsed or not
    parsed: int = 0
    agreed: int = 0  # of the parsed
    checker_passed: int = 0  # of all
    judge_exhibits: int = 0  # of the parsed

    @property
    def rate(self) -> float:
        return self.agreed / self.parsed if self.parsed else float("nan")


class JudgeQACollector:
    """Observes events (in log order) and keeps one row per judge verdict."""

    def __init__(self) -> None:
        self._episodes: dict[str, EpisodeStarted] = {}
        self._users: dict[tuple[str, int], str] = {}
        self._questions: dict[str, str] = {}  # request id -> prompt, judge calls only
        self._answers: dict[str, str] = {}
        self._rows: list[tuple[tuple[str, str, str, int, str, int], QARow]] = []
        self.agreement: dict[tuple[str, str], Agreement] = {}

    def observe(self, event: Event) -> None:
        match event:
            case ModelRequested(role="judge"):
                self._questions[event.request_id] = (
                    event.messages[-1]["content"] if event.messages else ""
                )
            case ModelResponded(role="judge"):
                self._answers[event.request_id] = event.text
            case JudgeVerdict():
                self._verdict(event)
            case InstanceStarted():
                self._users[(event.episode_id, event.instance)] = event.persona
            case EpisodeStarted():
                self._episodes[event.episode_id] = event

    def _verdict(self, event: JudgeVerdict) -> None:
        episode = self._episodes[event.episode_id]
        row: QARow = {
            "task": episode.task,
            "framework": episode.framework,
            "method": episode.method,
            "agent_model": episode.models.get("agent", ""),
            "judge_model": episode.models.get("judge", ""),
            "seed": episode.seed,
            "user": self._users.get((event.episode_id, event.instance), ""),
            "instance": event.instance,
            "metric": event.metric,
            "component": event.component,
            "score": event.score,
            "parsed": event.parsed,
            "checker": event.checker,
            "checked": "" if event.checked is None else event.checked,
            "question": self._questions.pop(event.request_id, ""),
            "answer": self._answers.pop(event.request_id, ""),
        }
        order = (
            episode.task,
            episode.framework,
            episode.method,
            episode.seed,
            event.episode_id,
            event.seq,
        )
        self._rows.append((order, row))
        if event.checker and event.checked is not None:
            key = (episode.task, event.component)
            stats = self.agreement.setdefault(
                key, Agreement(task=episode.task, component=event.component, checker=event.checker)
            )
            exhibits = event.score > 0
            stats.judged += 1
            stats.checker_passed += event.checked
            if event.parsed:
                stats.parsed += 1
                stats.agreed += exhibits == event.checked
                stats.judge_exhibits += exhibits

    def rows(self) -> list[QARow]:
        return [row for _, row in sorted(self._rows, key=lambda item: item[0])]

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=QA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_row(dict(row)) for row in self.rows())  # answers are untrusted
        return buffer.getvalue()

    def parse_failures(self) -> dict[str, int]:
        """Unparseable verdicts by metric."""
        out: dict[str, int] = defaultdict(int)
        for _, row in self._rows:
            if not row["parsed"]:
                out[row["metric"]] += 1
        return dict(out)
