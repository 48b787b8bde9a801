"""A report from one or more recorded runs: tables, judge Q&A, plots.

Everything is computed from the runs' event logs, so the report is the same
whether written at the end of a run or later, and several runs (say, one per
agent model) can be combined into one set of tables.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

from prose_sim.errors import RunIOError, UsageError
from prose_sim.events import EpisodeStarted, ModelResponded, ParseFailed, RunStarted
from prose_sim.metrics.bertscore import DEFAULT_MODEL, comparable_with_paper
from prose_sim.report import aggregation, metric_study, paired
from prose_sim.report.judge_qa import JudgeQACollector
from prose_sim.report.plots import write_plots
from prose_sim.report.rows import Row
from prose_sim.report.tables import agreement_table, markdown_tables, summarize, summary_csv
from prose_sim.results.collector import ResultsCollector
from prose_sim.results.notice import run_dir_notice
from prose_sim.runfolder import RunFolder
from prose_sim.untrusted import markdown_cell

# how a method that infers nothing (no_learning, icl) is scored, as the released code does
NO_PREFERENCES_NOTE = (
    'A method with no inferred preferences (no_learning, icl) is scored on the string "None", as '
    "in the released code: its Pref. acc. and preference BERTScores compare that word with the "
    "users' preferences, and its Pref. len is 4 (the string's length)."
)


class Report:
    def __init__(self, run_dirs: list[Path], baseline: str | None = None):
        """``baseline``: the label the paired comparisons compare every other method with
        (one run's: a method label; several runs': ``RUN/method``); default: one run's
        ``[report] baseline``, else every pair."""
        self.run_dirs = run_dirs
        # the paired comparisons' groups: a method's rows, by label (RUN/method for several runs)
        self.labeled: list[paired.LabeledRows] = []
        self.baselines: list[str] = []  # each run's [report] baseline
        self.rows: list[Row] = []
        self.qa = JudgeQACollector()
        self.scenarios: list[str] = []
        self.parse_failures: dict[tuple[str, str], int] = defaultdict(int)
        self.answers: dict[tuple[str, str], int] = defaultdict(
            int
        )  # answered calls, by role and purpose
        self.notices: list[str] = []  # the smoke-test notices of the runs
        # answers cut at max_new_tokens (finish_reason "length"), by role and purpose
        self.truncated: dict[tuple[str, str], int] = defaultdict(int)
        self.bertscore_models: set[tuple[str, bool]] = set()  # (model, rescaled) of each run
        self.judge_parsings: set[str] = set()  # [metrics] judge_parsing of each run
        for run_dir in run_dirs:
            self._load(run_dir)
        self.summaries = summarize(self.rows)
        self.correlations = metric_study.correlations(self.rows)
        self.baseline = self._baseline(baseline)
        self.comparisons = paired.compare(self.labeled, self.baseline)

    def _baseline(self, given: str | None) -> str:
        """The paired comparisons' baseline label ("" for every pair); a UsageError naming the
        labels when the given one is none of them."""
        labels = list(dict.fromkeys(g.label for g in self.labeled))
        if given is None:
            return self.baselines[0] if len(self.run_dirs) == 1 and self.baselines else ""
        if given and given not in labels:
            raise UsageError(
                f"--baseline {given!r}: not a method of the report (its methods: "
                f"{', '.join(labels) or 'none'})"
            )
        return given

    def bertscore_note(self) -> str:
        """A line saying which BERTScore the tables show, and whether the paper's numbers compare."""
        if not any("bertscore" in r for r in self.rows):
            return ""
        return bertscore_note(self.bertscore_models)

    def judge_parsing_note(self) -> str:
        """A line saying how the judge's verdicts were read ("" when nothing was judged)."""
        if not any("ppcm" in r or "preference_similarity" in r for r in self.rows):
            return ""
        return judge_parsing_note(self.judge_parsings)

    @property
    def notice(self) -> str:
        """One line: the smoke-test notice ("" when every run used real models)."""
        return " | ".join(dict.fromkeys(self.notices))

    def _load(self, run_dir: Path) -> None:
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir}: no such run folder")
        results = ResultsCollector()
        name = ""
        for event in RunFolder(run_dir).events():
            results.observe(event)
            self.qa.observe(event)
            if isinstance(event, RunStarted):
                name = event.scenario_name
            elif isinstance(event, ModelResponded):
                self.answers[(event.role, event.purpose)] += 1
                if event.finish_reason == "length":
                    self.truncated[(event.role, event.purpose)] += 1
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
        rows = results.rows()
        self.rows += rows
        self._label(run_dir, rows)
        self.bertscore_models.add(_bertscore_of(run_dir))
        self.judge_parsings.add(_judge_parsing_of(run_dir))

    def _label(self, run_dir: Path, rows: list[Row]) -> None:
        """Group a run's rows by method for the paired comparisons, in the scenario's order of
        methods, labelled ``RUN/method`` when the report combines several runs."""
        scenario = _scenario_of(run_dir)
        methods = scenario.get("methods")
        order = list(methods) if isinstance(methods, dict) else []
        order += sorted({str(r["method"]) for r in rows} - set(order))
        report = scenario.get("report")
        self.baselines += [str(report.get("baseline", ""))] if isinstance(report, dict) else [""]
        several = len(self.run_dirs) > 1
        names = [d.name for d in self.run_dirs]
        run = run_dir.name if names.count(run_dir.name) == 1 else str(run_dir)
        for method in order:
            mine = [r for r in rows if r["method"] == method]
            if mine:
                label = f"{run}/{method}" if several else method
                self.labeled.append(paired.LabeledRows(label, mine))

    def markdown(self) -> str:
        instances = len(self.rows)
        failed = sum(r["status"] != "ok" for r in self.rows)
        lines = [
            "# prose_sim report",
            "",
            *([f"> **{self.notice}**", ""] if self.notice else []),
            "Runs: " + ", ".join(markdown_cell(s) for s in self.scenarios),
            "",
            f"{instances} task instances, {failed} failed. Cells: mean ± standard error over seeds "
            "(per-seed means over the instances that finished; cost columns over all instances). "
            "PPCM and FPM range -2..2, preference similarity 0..4.",
            "",
            NO_PREFERENCES_NOTE,
            "",
            *([self.bertscore_note(), ""] if self.bertscore_note() else []),
            *([self.judge_parsing_note(), ""] if self.judge_parsing_note() else []),
            *([reuse, ""] if (reuse := document_reuse_line(self.rows)) else []),
            markdown_tables(self.summaries),
            paired.markdown(self.comparisons, self.baseline),
            aggregation.markdown(self.rows),
            metric_study.markdown(self.correlations, self.bertscore_note()),
            agreement_table(self.qa.agreement),
        ]
        if self.parse_failures:
            lines += [
                "## Unparseable model answers",
                "",
                "| role | purpose | failed/total |",
                "|---|---|--:|",
            ]
            for (role, purpose), n in sorted(self.parse_failures.items()):
                lines.append(
                    f"| {role} | {purpose} | {n}/{max(n, self.answers[(role, purpose)])} |"
                )
            lines += ["", "An unparseable judge verdict scores 0, as in the paper.", ""]
        if self.truncated:
            lines += [
                "## Truncated model answers",
                "",
                'Cut at max_new_tokens by the server (finish_reason "length"); counted apart '
                "from the unparseable answers above, which may include them.",
                "",
                "| role | purpose | truncated n/N |",
                "|---|---|--:|",
            ]
            for (role, purpose), n in sorted(self.truncated.items()):
                lines.append(f"| {role} | {purpose} | {n}/{self.answers[(role, purpose)]} |")
            lines.append("")
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
            *(
                [("correlations.csv", metric_study.correlations_csv(self.correlations))]
                if self.correlations
                else []
            ),
            *(
                [("report_paired.csv", paired.comparisons_csv(self.comparisons))]
                if self.comparisons
                else []
            ),
        ):
            write_whole(out_dir / name, text)
            written.append(out_dir / name)
        try:
            written += metric_study.write_plot(self.rows, out_dir, notice=self.notice)
            return written + write_plots(self.summaries, self.rows, out_dir, notice=self.notice)
        except OSError as exc:  # a full disk while a plot is saved
            raise RunIOError(exc.filename or out_dir, exc) from None


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a failed write (a full disk) leaves
    no truncated file and is a ``RunIOError`` naming the path."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RunIOError(path, exc) from None


def document_reuse_line(rows: list[Row]) -> str:
    """One line: how many of the grid's documents more than one seed uses ("" for one seed).

    A small corpus (the bundled one: a dozen documents a source) makes the seeds draw
    overlapping documents, so the seeds are not independent samples of documents.
    """
    seeds_of: dict[str, set[object]] = defaultdict(set)
    for row in rows:
        seeds_of[str(row["document_id"])].add(row["seed"])
    seeds: set[object] = set().union(*seeds_of.values())
    if len(seeds) < 2:
        return ""
    reused = sum(len(used) > 1 for used in seeds_of.values())
    return (
        f"Documents: {len(seeds_of)} distinct documents over {len(seeds)} seeds; {reused} of "
        f"them are used under more than one seed"
        + (" (the seeds share documents, so they are not independent samples)." if reused else ".")
    )


def bertscore_note(models: set[tuple[str, bool]]) -> str:
    """Which BERTScore (model, rescaled) a set of runs shows, and whether it compares with the paper's."""
    if any(m == DEFAULT_MODEL for m, _ in models):
        return "BERTScore: MiniLM BERTScore, not comparable with the paper's."
    if models and all(comparable_with_paper(m, r) for m, r in models):
        return "BERTScore: microsoft/deberta-xlarge with baseline rescaling, as the paper's."
    names = ", ".join(sorted(f"{m}{' (rescaled)' if r else ''}" for m, r in models)) or "?"
    return (
        f"BERTScore: {names}, not comparable with the paper's (microsoft/deberta-xlarge, rescaled)."
    )


JUDGE_PARSINGS = {
    "released": 'the released judge\'s parser (the first line starting with "Verdict:" once '
    "quotes and asterisks are stripped; no such line scores 0)",
    "forgiving": "prose_sim's forgiving parser (the last Verdict: line, markdown tolerated, else "
    "the keyword said most often), not the released judge's",
}


def judge_parsing_note(parsings: set[str]) -> str:
    """Which verdict parser ([metrics] judge_parsing) a set of runs' judge metrics used."""
    named = [f"{name}: {JUDGE_PARSINGS.get(name, name)}" for name in sorted(parsings)]
    return (
        "Judge verdicts (PPCM, FPM, similarity) read with judge_parsing = " + "; ".join(named) + "."
    )


def _scenario_of(run_dir: Path) -> dict:
    """A run's resolved scenario tables ({} when they cannot be read)."""
    try:
        return RunFolder(run_dir).resolved_scenario()
    except UsageError:
        return {}


def _metrics_of(run_dir: Path) -> dict:
    """The [metrics] table of a run's resolved scenario ({} when it cannot be read)."""
    metrics = _scenario_of(run_dir).get("metrics", {})
    return metrics if isinstance(metrics, dict) else {}


def _judge_parsing_of(run_dir: Path) -> str:
    """The [metrics] judge_parsing a run's saved scenario names (the default when unset)."""
    return str(_metrics_of(run_dir).get("judge_parsing", "forgiving"))


def run_bertscore_note(run_dir: Path) -> str:
    """``bertscore_note`` of one run folder."""
    return bertscore_note({_bertscore_of(run_dir)})


def _bertscore_of(run_dir: Path) -> tuple[str, bool]:
    """The (BERTScore model, rescaled) a run's saved scenario names (defaults when unreadable)."""
    metrics = _metrics_of(run_dir)
    return str(metrics.get("bertscore", DEFAULT_MODEL)), bool(
        metrics.get("bertscore_rescale", False)
    )
