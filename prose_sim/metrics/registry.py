"""The metric registry: every per-instance metric a run reports, once.

Each ``Metric`` says its name (the ``results.csv`` column), its label (the report's
column title), its range and direction, where it comes from, and where it is shown:
the report's tables (and ``report.csv``, in this order), the aggregation section,
``summary.json``'s per-method means and the metric-validity study (as a preference
measure or a writing metric, in the released code's order). The results collector,
the report, the viewer and the metric study read their metrics from here; a new
metric is one more entry.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Direction = Literal["higher", "lower", ""]  # "": neither is better (descriptive)


class Metric(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    label: str
    source: str  # what computes it, from what
    low: float | None = None  # the range (None: unbounded on that side)
    high: float | None = None
    direction: Direction = "higher"
    decimals: int = 3  # the report's tables
    table: bool = True  # a column of the report's tables and report.csv
    aggregation: bool = False  # in the report's "released code's means and ours" section
    summary: bool = False  # in summary.json's per-method means
    # the metric-validity study: a "preference" measure (of the inferred preferences) or a
    # "writing" metric (of the draft), its label there and its place in the released code's order
    study: Literal["preference", "writing", ""] = ""
    study_label: str = ""
    study_rank: int = 0
    # the run's closing table on the console (headline metrics only), its place there (0: not)
    console_rank: int = 0


_JUDGE = "the judge (actors/judge.py)"

# In the report tables' order: report.csv's columns follow it.
METRICS: tuple[Metric, ...] = (
    Metric(
        name="ppcm",
        console_rank=1,
        label="PPCM",
        source=f"{_JUDGE}: the mean per-component verdict on the draft (PPCM_SCALE)",
        low=-2.0,
        high=2.0,
        aggregation=True,
        summary=True,
        study="writing",
        study_label="PPCM",
        study_rank=3,
    ),
    Metric(
        name="fpm",
        console_rank=2,
        label="FPM",
        source=f"{_JUDGE}: the verdict on the draft against all preferences (FPM_SCALE)",
        low=-2.0,
        high=2.0,
        aggregation=True,
        summary=True,
        study="writing",
        study_label="FPM",
        study_rank=4,
    ),
    Metric(
        name="ppcm_fpm_mean",
        label="(PPCM+FPM)/2",
        source=f"{_JUDGE}: the mean of PPCM and FPM",
        low=-2.0,
        high=2.0,
        aggregation=True,
        study="writing",
        study_label="(PPCM+FPM)/2",
        study_rank=5,
    ),
    Metric(
        name="levenshtein_norm",
        console_rank=5,
        label="Lev. norm",
        source="metrics/text.py: word edit distance of draft to user text / the longer's word count",
        low=0.0,
        high=1.0,
        direction="lower",
        aggregation=True,
        summary=True,
        study="writing",
        study_label="Lev. norm",
        study_rank=1,
    ),
    Metric(
        name="bertscore",
        console_rank=3,
        label="BERTScore",
        source="the judge's BERTScore (metrics/bertscore.py): F1 of the draft against the user's text",
        high=1.0,
        aggregation=True,
        summary=True,
        study="writing",
        study_label="BERTScore",
        study_rank=2,
    ),
    Metric(
        name="preference_accuracy",
        console_rank=4,
        label="Pref. acc.",
        source="the judge's BERTScore: 1 when the inferences score the user's own preferences highest",
        low=0.0,
        high=1.0,
        aggregation=True,
        summary=True,
        study="preference",
        study_label="pref. accuracy",
        study_rank=0,
    ),
    Metric(
        name="preference_f1",
        label="Pref. F1",
        source="the judge's BERTScore (metrics/bertscore.py): F1 of inferred against true preferences",
        high=1.0,
        aggregation=True,
        study="preference",
        study_label="pref. BERTScore F1",
        study_rank=1,
    ),
    Metric(
        name="preference_precision",
        label="Pref. P",
        source="the judge's BERTScore (metrics/bertscore.py): precision of inferred against true preferences",
        high=1.0,
        study="preference",
        study_label="pref. BERTScore precision",
        study_rank=2,
    ),
    Metric(
        name="preference_recall",
        label="Pref. R",
        source="the judge's BERTScore (metrics/bertscore.py): recall of inferred against true preferences",
        high=1.0,
        study="preference",
        study_label="pref. BERTScore recall",
        study_rank=3,
    ),
    Metric(
        name="preference_similarity",
        label="Pref. sim.",
        source=f"{_JUDGE}: inferred against true preferences (SIMILARITY_SCALE)",
        low=0.0,
        high=4.0,
        decimals=2,
        study="preference",
        study_label="pref. similarity",
        study_rank=5,
    ),
    Metric(
        name="verifiable_share",
        label="Verifiable",
        source="metrics/verifiable.py: the share of checkable components the draft passes",
        low=0.0,
        high=1.0,
        summary=True,
    ),
    Metric(
        name="preference_length",
        label="Pref. len",
        source="actors/judge.py: the inferred preference string's length in characters",
        low=0.0,
        direction="",
        decimals=0,
        summary=True,
        study="preference",
        study_label="pref. length",
        study_rank=4,
    ),
    # not in the tables
    Metric(
        name="levenshtein",
        label="Levenshtein",
        source="metrics/text.py: word edit distance of the draft to the user's text",
        low=0.0,
        direction="lower",
        table=False,
        summary=True,
        study="writing",
        study_label="Levenshtein",
        study_rank=0,
    ),
    Metric(
        name="retrieval_accuracy",
        label="Retrieval acc.",
        source="actors/judge.py: the share of retrieved demonstrations of the user's own",
        low=0.0,
        high=1.0,
        table=False,
        summary=True,
    ),
    Metric(
        name="parse_failures",
        label="Parse failures",
        source="results/collector.py: answers no parser accepted (ParseFailed events)",
        low=0.0,
        direction="lower",
        table=False,
        summary=True,
    ),
    Metric(
        name="true_components_share",
        label="True components",
        source="actors/judge.py: the share of the true components the preferences name verbatim",
        low=0.0,
        high=1.0,
        table=False,
        study="preference",
        study_label="share of true components (ours)",
        study_rank=6,
    ),
    Metric(
        name="user_verifiable_share",
        label="User verifiable",
        source="metrics/verifiable.py: the share of checkable components the user's text passes",
        low=0.0,
        high=1.0,
        table=False,
    ),
    Metric(
        name="accepted",
        label="Accepted",
        source="actors/users: 1 when the user accepted the draft as it was",
        low=0.0,
        high=1.0,
        direction="",
        table=False,
    ),
    Metric(
        name="judge_unparsed",
        label="Judge unparsed",
        source=f"{_JUDGE}: verdicts whose answer no parser accepted",
        low=0.0,
        direction="lower",
        table=False,
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def table_metrics() -> list[Metric]:
    """The report tables' metric columns, in order."""
    return [m for m in METRICS if m.table]


def aggregation_metrics() -> list[Metric]:
    """The metrics of the report's aggregation section, in order."""
    return [m for m in METRICS if m.aggregation]


def summary_metrics() -> list[str]:
    """The metrics of ``summary.json``'s per-method means, in order."""
    return [m.name for m in METRICS if m.summary]


def console_metrics() -> list[str]:
    """The metrics of the run's closing table on the console, in order."""
    return [
        m.name for m in sorted((m for m in METRICS if m.console_rank), key=lambda m: m.console_rank)
    ]


def headline_metrics() -> list[Metric]:
    """The headline metrics (those of the run's closing table), in that order: the report's
    paired comparisons compare methods on these."""
    return [BY_NAME[name] for name in console_metrics()]


def study_metrics(kind: Literal["preference", "writing"]) -> list[Metric]:
    """The metric study's preference measures or writing metrics, in the released code's order."""
    return sorted((m for m in METRICS if m.study == kind), key=lambda m: m.study_rank)
