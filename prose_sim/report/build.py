"""A report from one or more recorded runs: tables, judge Q&A, plots.

Everything is computed from the runs' event logs, so the report is the same
whether written at the end of a run or later, and several runs (say, one per
agent model) can be combined into one set of tables.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from prose_sim.errors import UsageError
from prose_sim.events import EpisodeStarted, ModelResponded, ParseFailed, RunStarted
from prose_sim.report.judge_qa import JudgeQACollector
from prose_sim.report.notice import run_dir_notice
from prose_sim.report.plots import write_plots
from prose_sim.report.results import ResultsCollector
from prose_sim.report.tables import agreement_table, markdown_tables, summarize, summary_csv
from prose_sim.eventlog import read_events


class Report:
    def __init__(self, run_dirs: list[Path]):
        self.run_dirs = run_dirs
        self.rows: list[dict[str, object]] = []
        self.qa = JudgeQACollector()
        self.scenarios: list[str] = []
        self.parse_failures: dict[tuple[str, str], int] = defaultdict(int)
        self.answers: dict[tuple[str, str], int] = defaultdict(int)  # answered calls, by role and purpose
        self.notices: list[str] = []  # the smoke-test notices of the runs
        for run_dir in run_dirs:
            self._load(run_dir)
        self.summaries = summarize(self.rows)

    @property
    def notice(self) -> str:
        """One line: the smoke-test notice ("" when every run used real models)."""
        return " | ".join(dict.fromkeys(self.notices))

    def _load(self, run_dir: Path) -> None:
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir}: no such run folder")
        results = ResultsCollector()
        name = ""
        for event in read_events(run_dir / "events.jsonl"):
            results.observe(event)
            self.qa.observe(event)
            if isinstance(event, RunStarted):
                name = event.scenario_name
            elif isinstance(event, ModelResponded):
                self.answers[(event.role, event.purpose)] += 1
            elif isinstance(event, ParseFailed):
                self.parse_failures[(event.role, event.purpose)] += 1
            elif isinstance(event, EpisodeStarted) and not name:
                name = "?"
        if not name:
            raise UsageError(f"{run_dir}/events.jsonl: holds no run (no run_started event)")
        self.scenarios.append(f"{run_dir.name} (scenario {name})")
        notice = run_dir_notice(run_dir)
        if notice:
            self.notices.append(notice)
        self.rows += results.rows()

    def markdown(self) -> str:
        instances = len(self.rows)
        failed = sum(r["status"] != "ok" for r in self.rows)
        lines = [
            "# prose_sim report",
            "",
            *([f"> **{self.notice}**", ""] if self.notice else []),
            "Runs: " + ", ".join(self.scenarios),
            "",
            f"{instances} task instances, {failed} failed. Cells: mean ± standard error over seeds "
            "(per-seed means over the instances that finished; cost columns over all instances). "
            "PPCM and FPM range -2..2, preference similarity 0..4.",
            "",
            markdown_tables(self.summaries),
            agreement_table(self.qa.agreement),
        ]
        if self.parse_failures:
            lines += ["## Unparseable model answers", "", "| role | purpose | failed/total |", "|---|---|--:|"]
            for (role, purpose), n in sorted(self.parse_failures.items()):
                lines.append(f"| {role} | {purpose} | {n}/{max(n, self.answers[(role, purpose)])} |")
            lines += ["", "An unparseable judge verdict scores 0, as in the paper.", ""]
        return "\n".join(line for line in lines if line is not None).rstrip() + "\n"

    def write(self, out_dir: Path) -> list[Path]:
        """``report.md``, ``report.csv``, ``judge_qa.csv`` and the plots, into ``out_dir``."""
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{out_dir}: cannot create the report folder: {exc}") from None
        written = []
        for name, text in (
            ("report.md", self.markdown()),
            ("report.csv", summary_csv(self.summaries)),
            ("judge_qa.csv", self.qa.csv()),
        ):
            (out_dir / name).write_text(text, encoding="utf-8")
            written.append(out_dir / name)
        return written + write_plots(self.summaries, self.rows, out_dir, notice=self.notice)
