"""A run's event log -> the viewer's data, in one streaming pass.

Each episode's events are gathered until it finishes, then turned into an
``EpisodeView``, encoded and packed into the current chunk; a full chunk is
gzipped and base64-encoded, so memory holds only the episodes in flight and
the packed chunks. Documents are stored once for the whole page, and every
prompt that quotes one refers to it instead (``\\ue000N\\ue001``).
"""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import msgspec

from prose_sim.events import (
    DemonstrationProduced,
    DraftProduced,
    EpisodeFinished,
    EpisodeStarted,
    Event,
    InstanceFinished,
    InstanceStarted,
    JudgeVerdict,
    MetricsComputed,
    ModelRequested,
    ParseFailed,
    PreferencesInferred,
    PreferencesRetrieved,
    RunFinished,
    RunStarted,
    StepFailed,
)
from prose_sim.report.calls import ModelCall, pair_calls
from prose_sim.runfolder import RunFolder
from prose_sim.view.diff import word_diff
from prose_sim.view.model import (
    CallView,
    CompareGroup,
    CompareMember,
    EpisodeRow,
    EpisodeView,
    InstanceView,
    VerdictView,
)

CHUNK_EPISODES = 64  # episodes per gzipped chunk (the page unpacks one chunk to open an episode)
CHUNK_BYTES = 1 << 20  # or fewer, once their JSON reaches this size
DOC_OPEN, DOC_CLOSE = "\ue000", "\ue001"
# the longest text the page shows (an answer, a prompt, a draft, a document); a longer one
# is cut there, saying how much is left out and how to see it whole
TEXT_MAX = 20_000
_encoder = msgspec.json.Encoder()


class ViewData(msgspec.Struct, kw_only=True):
    rows: list[EpisodeRow]
    chunks: list[str]  # base64 of gzipped JSON objects: episode id -> EpisodeView
    documents: list[str]
    run_started: RunStarted | None
    run_finished: RunFinished | None
    models: dict[str, str] = {}  # role -> model name, as the first episode served them
    # the instances that more than one method ran, each method's draft shown side by side
    compare: list[CompareGroup] = []


class _Episode:
    """An episode's events, kept until it finishes."""

    def __init__(self, started: EpisodeStarted):
        self.started = started
        self.events: list[Event] = []
        self.documents: list[str] = []  # the documents of its instances so far
        self.finished: EpisodeFinished | None = None


# (framework, task, user) -> the user's true preference components (None: unknown)
TrueComponents = Callable[[str, str, str], Sequence[str] | None]


class ViewBuilder:
    def __init__(self, true_components: TrueComponents | None = None):
        """``true_components(framework, task, user)``: the user's true preference
        components (None: take them from the judge's PPCM questions)."""
        self.true_components = true_components
        self.rows: list[EpisodeRow] = []
        self.chunks: list[str] = []
        self.documents: list[str] = []
        self._document_index: dict[str, int] = {}
        self._open: dict[str, _Episode] = {}
        self._packed: list[bytes] = []
        self._packed_bytes = 0
        self.run_started: RunStarted | None = None
        self.run_finished: RunFinished | None = None
        self.models: dict[str, str] = {}
        # (task, framework, seed, user, document id) -> the methods' episodes that ran it
        # (task, framework, seed, user, document id) -> (method, episode id, instance) of each
        # episode that ran it
        self._instances: dict[tuple[str, str, int, str, str], list[tuple[str, str, int]]] = {}

    def observe(self, event: Event) -> None:
        if isinstance(event, EpisodeStarted):
            self._open[event.episode_id] = _Episode(event)
            self.models = self.models or dict(event.models)
            return
        episode = self._open.get(event.episode_id)
        if episode is None:
            match event:
                case RunStarted() if self.run_started is None:
                    self.run_started = event
                case RunFinished():
                    self.run_finished = event
            return
        match event:
            case InstanceStarted():
                self._document(event.document)
                episode.documents.append(event.document)
            case ModelRequested():
                event = _with_messages(event, [self._refer(m, episode) for m in event.messages])
        episode.events.append(event)
        if isinstance(event, EpisodeFinished):
            episode.finished = event
            self._close(self._open.pop(event.episode_id))

    def finish(self) -> ViewData:
        for episode in list(self._open.values()):  # an interrupted run: what there is
            self._close(episode)
        self._open.clear()
        self._seal()
        self.rows.sort(key=lambda r: (r.task, r.framework, r.method, r.seed, r.id))
        return ViewData(
            compare=self._compare_groups(),
            rows=self.rows,
            chunks=self.chunks,
            documents=self.documents,
            run_started=self.run_started,
            run_finished=self.run_finished,
            models=self.models,
        )

    # --- documents -------------------------------------------------------------------

    def _document(self, text: str) -> int:
        index = self._document_index.get(text)
        if index is None:
            index = self._document_index[text] = len(self.documents)
            self.documents.append(text)
        return index

    def _refer(self, message: dict[str, str], episode: _Episode) -> dict[str, str]:
        """The message with each document of the episode replaced by its reference."""
        content = message.get("content", "")
        for document in episode.documents:
            if document and document in content:
                content = content.replace(
                    document, f"{DOC_OPEN}{self._document_index[document]}{DOC_CLOSE}"
                )
        return {**message, "content": content}

    # --- one finished episode ------------------------------------------------------------

    def _close(self, episode: _Episode) -> None:
        view = self._episode_view(episode)
        self.rows.append(_row(view, episode, len(self.chunks)))
        for inst in view.instances:
            where = (view.task, view.framework, view.seed, inst.user, inst.document_id)
            self._instances.setdefault(where, []).append((view.method, view.id, inst.instance))
        data = _encoder.encode(view)
        key = _encoder.encode(view.id)
        self._packed.append(key + b":" + data)
        self._packed_bytes += len(data)
        if len(self._packed) >= CHUNK_EPISODES or self._packed_bytes >= CHUNK_BYTES:
            self._seal()

    def _compare_groups(self) -> list[CompareGroup]:
        """The instances run by more than one method, in a fixed order (members by method);
        after the rows are sorted, which the members point into."""
        position = {row.id: i for i, row in enumerate(self.rows)}
        groups = []
        for key in sorted(self._instances):
            members = sorted(self._instances[key])
            if len({method for method, _, _ in members}) > 1:
                groups.append(
                    CompareGroup(
                        *key, members=[CompareMember(position[e], n) for _, e, n in members]
                    )
                )
        return groups

    def _seal(self) -> None:
        if not self._packed:
            return
        payload = b"{" + b",".join(self._packed) + b"}"
        self.chunks.append(base64.b64encode(gzip.compress(payload, 6, mtime=0)).decode("ascii"))
        self._packed, self._packed_bytes = [], 0

    def _episode_view(self, episode: _Episode) -> EpisodeView:
        s = episode.started
        view = EpisodeView(
            id=s.episode_id,
            task=s.task,
            framework=s.framework,
            method=s.method,
            seed=s.seed,
            users=list(s.personas),
            models=dict(s.models),
            status=episode.finished.status if episode.finished else "unfinished",
            error=episode.finished.error if episode.finished else "",
        )
        instances: dict[int, InstanceView] = {}
        drafts: dict[int, str] = {}
        calls, unmatched = pair_calls(episode.events)
        for event in episode.events:
            if isinstance(event, InstanceStarted):
                true = (
                    self.true_components(s.framework, s.task, event.persona)
                    if self.true_components
                    else None
                )
                instances[event.instance] = InstanceView(
                    instance=event.instance,
                    user=event.persona,
                    document_id=event.document_id,
                    document=self._document_index[event.document],
                    true=list(true or []),
                )
                continue
            inst = instances.get(getattr(event, "instance", -1))
            if inst is None:
                continue
            match event:
                case PreferencesRetrieved():
                    inst.used, inst.examples, inst.retrieved = (
                        event.preferences,
                        len(event.examples),
                        event.retrieved,
                    )
                case DraftProduced():
                    drafts[event.instance] = shown(event.text, s.episode_id)
                    inst.used = inst.used or event.preferences
                    inst.has_draft = True
                case DemonstrationProduced():
                    inst.diff = word_diff(
                        drafts.get(event.instance, ""), shown(event.text, s.episode_id)
                    )
                    inst.has_user_text, inst.accepted = True, event.accepted
                case PreferencesInferred():
                    inst.inferred = shown(event.preferences, s.episode_id)
                    inst.components = list(event.components)
                    inst.validation, inst.threshold = dict(event.validation), event.threshold
                case JudgeVerdict():
                    inst.verdicts.append(
                        VerdictView(
                            metric=event.metric,
                            component=event.component,
                            score=event.score,
                            parsed=event.parsed,
                            checker=event.checker,
                            checked=event.checked,
                            call=event.request_id,
                        )
                    )
                case MetricsComputed():
                    inst.metrics = dict(event.metrics)
                case InstanceFinished():
                    inst.status = event.status
                case StepFailed():
                    inst.problems.append(
                        f"step {event.stage} failed ({event.actor}): {event.error}"
                    )
        for inst in instances.values():
            if not inst.true:  # no catalog: the components the judge asked about
                inst.true = [v.component for v in inst.verdicts if v.metric == "ppcm"]
        for failed in unmatched:
            if (inst := instances.get(failed.instance)) is not None:
                inst.problems.append(
                    f"{failed.role}/{failed.purpose} answer could not be parsed: {failed.excerpt}"
                )
        for call in calls:
            if (inst := instances.get(call.request.instance)) is not None:
                inst.calls.append(_call_view(call, s.episode_id))
        view.instances = [instances[i] for i in sorted(instances)]
        return view


def _with_messages(event: ModelRequested, messages: list[dict[str, str]]) -> ModelRequested:
    return msgspec.structs.replace(event, messages=messages)


def shown(text: str, episode_id: str) -> str:
    """``text`` as the page shows it: whole up to ``TEXT_MAX`` characters, else cut there with
    a line saying how much is left out and the command that prints it whole."""
    if len(text) <= TEXT_MAX:
        return text
    return (
        f"{text[:TEXT_MAX]}\n[... {len(text) - TEXT_MAX:,} more characters not shown here; "
        f"the whole text: python -m prose_sim prompts show --run RUN_DIR --episode {episode_id}]"
    )


def _call_view(call: ModelCall, episode_id: str) -> CallView:
    req, r, f = call.request, call.response, call.failure
    view = CallView(
        id=req.request_id,
        role=req.role,
        purpose=req.purpose,
        model=req.model,
        messages=[
            (m.get("role", ""), shown(m.get("content", ""), episode_id)) for m in req.messages
        ],
        parse_failed=call.parse_failed is not None,
    )
    if r is not None:
        view.answer = shown(r.text, episode_id)
        view.input_tokens, view.output_tokens = r.input_tokens, r.output_tokens
        view.latency_s, view.cached, view.attempts = round(r.latency_s, 4), r.cached, r.attempts
    elif f is not None:
        view.error, view.attempts = f.error, f.attempts
    return view


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if not math.isnan(v)]
    return round(sum(values) / len(values), 4) if values else None


def _row(view: EpisodeView, episode: _Episode, chunk: int) -> EpisodeRow:
    ok = [i for i in view.instances if i.status == "ok"]
    search = " ".join(
        [
            view.id,
            *view.users,
            *(i.document_id for i in view.instances),
            *(i.inferred for i in view.instances),
        ]
    )
    return EpisodeRow(
        id=view.id,
        task=view.task,
        framework=view.framework,
        method=view.method,
        seed=view.seed,
        users=view.users,
        status=view.status,
        instances=len(view.instances),
        failed=sum(i.status != "ok" for i in view.instances),
        ppcm=_mean([i.metrics["ppcm"] for i in ok if "ppcm" in i.metrics]),
        fpm=_mean([i.metrics["fpm"] for i in ok if "fpm" in i.metrics]),
        levenshtein_norm=_mean(
            [i.metrics["levenshtein_norm"] for i in ok if "levenshtein_norm" in i.metrics]
        ),
        calls=sum(len(i.calls) for i in view.instances),
        parse_failures=sum(1 for e in episode.events if type(e) is ParseFailed),
        chunk=chunk,
        search=search.lower(),
    )


def build_view_data(
    events: Iterable[Event], true_components: TrueComponents | None = None
) -> ViewData:
    builder = ViewBuilder(true_components)
    for event in events:
        builder.observe(event)
    return builder.finish()


def read_view_data(run_dir: Path, true_components: TrueComponents | None = None) -> ViewData:
    return build_view_data(RunFolder(run_dir).events(), true_components)
