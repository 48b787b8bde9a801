"""The viewer's data: what the page shows, as typed Structs encoded to JSON.

``EpisodeRow`` is one line of the episode browser (encoded as an array, for
10,000s of them); ``EpisodeView`` is everything about one episode, loaded by
the page only when it is opened.
"""

from __future__ import annotations

import msgspec


class EpisodeRow(msgspec.Struct, array_like=True):
    """Field order matters: the page reads these arrays by position (ROW in viewer.js)."""

    id: str
    task: str
    framework: str
    method: str
    seed: int
    users: list[str]
    status: str
    instances: int
    failed: int
    ppcm: float | None
    fpm: float | None
    levenshtein_norm: float | None
    calls: int
    parse_failures: int
    chunk: int
    search: str  # lower-case text the search box matches: ids, documents, learned preferences


class CallView(msgspec.Struct, kw_only=True):
    id: str
    role: str
    purpose: str
    model: str
    messages: list[tuple[str, str]]  # (role, content); documents as \ue000N\ue001 references
    answer: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 1
    error: str = ""
    parse_failed: bool = False


class VerdictView(msgspec.Struct, kw_only=True):
    metric: str
    component: str
    score: float
    parsed: bool
    checker: str
    checked: bool | None
    call: str  # the request id


class InstanceView(msgspec.Struct, kw_only=True):
    instance: int
    user: str
    document_id: str
    document: int  # index into the page's document table
    status: str = "unfinished"
    used: str = ""  # the preferences the draft was written with
    examples: int = 0  # ICL examples in the drafting prompt
    retrieved: list[str] = []  # users of the earlier instances drawn on
    diff: list[tuple[int, str]] = []  # the draft against the user's text (view.diff)
    has_draft: bool = False
    has_user_text: bool = False
    accepted: bool = False
    inferred: str = ""
    components: list[str] = []  # kept
    validation: dict[str, list[int]] = {}  # component -> verdict scores (PROSE)
    threshold: float | None = None
    true: list[str] = []
    verdicts: list[VerdictView] = []
    metrics: dict[str, float] = {}
    calls: list[CallView] = []
    problems: list[str] = []  # failed steps, parse failures no answer was found for


class EpisodeView(msgspec.Struct, kw_only=True):
    id: str
    task: str
    framework: str
    method: str
    seed: int
    users: list[str]
    models: dict[str, str]
    status: str = "unfinished"
    error: str = ""
    instances: list[InstanceView] = []


class CompareMember(msgspec.Struct, array_like=True):
    """One method's take on an instance: its episode's row (its method, id and chunk are
    there) and the instance's number in that episode."""

    row: int  # index into the episode rows
    instance: int


class CompareGroup(msgspec.Struct, array_like=True):
    """One task instance (a document of a user under a seed) that several methods ran: the
    page shows their drafts side by side with their verdicts."""

    task: str
    framework: str
    seed: int
    user: str
    document_id: str
    members: list[CompareMember]


class RunSummary(msgspec.Struct, kw_only=True):
    run: str
    scenario: str
    version: str = ""
    status: str = "unfinished"
    wall_s: float | None = None
    episodes: int = 0
    instances: int = 0
    models: dict[str, str] = {}  # role -> "backend: model"
    methods: dict[str, str] = {}  # label -> settings, as written in the scenario
    notices: list[str] = []  # the smoke-test notice, when it applies
    stats: dict[str, str] = {}  # from summary.json: calls, tokens, wall time, ...
