"""Model answers recorded in an event log, served again in the order they came.

``replay`` answers every request of a re-run from the log; ``run --resume``
answers the requests an interrupted episode had already been answered before
asking live models for the rest. A request is matched by (episode, purpose,
request hash) and its occurrence: the n-th identical request of an episode gets
the n-th recorded answer. Prompts are deterministic, so a faithful re-run asks
exactly the recorded requests.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection, Iterable

from prose_sim.errors import NotRecorded
from prose_sim.events import Event, ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.protocol import Completion, ModelRequest

Key = tuple[str, str, str]  # episode, purpose, request hash
# one recorded outcome: the answer (with its original accounting) or the failure, as logged
Outcome = ModelResponded | ModelFailed


class RecordedResponses:
    """Recorded outcomes by (episode, purpose, request hash), in occurrence order.

    The outcomes are the log's own ``ModelResponded`` / ``ModelFailed`` events:
    serving one again is publishing it under the new call's request id.
    ``failures``: serve recorded failures too (replay, to reproduce a run
    exactly); resume leaves them out, so a step that failed is tried again.
    """

    def __init__(self, failures: bool = False, roles: Collection[str] | None = None):
        self.failures = failures
        self.roles = roles  # None: every role's calls
        self._calls: dict[Key, deque[Outcome]] = defaultdict(deque)
        self._pending: dict[str, Key] = {}  # request id -> key, until its outcome is seen
        self.served = 0

    @classmethod
    def from_events(
        cls,
        events: Iterable[Event],
        episodes: set[str] | None = None,
        failures: bool = False,
        roles: Collection[str] | None = None,
    ) -> RecordedResponses:
        """Index the model calls of ``episodes`` (default: all) in a log's events; ``roles``:
        only those roles' calls (a rescore leaves the judge's out: it is asked again)."""
        recorded = cls(failures, roles)
        for event in events:
            if episodes is None or event.episode_id in episodes:
                recorded.observe(event)
        return recorded

    def observe(self, event: Event) -> None:
        match event:
            case ModelRequested() if self.roles is None or event.role in self.roles:
                self._pending[event.request_id] = (
                    event.episode_id,
                    event.purpose,
                    event.request_hash,
                )
            case ModelResponded():
                key = self._pending.pop(event.request_id, None)
                if key is not None:
                    self._calls[key].append(event)
            case ModelFailed():
                key = self._pending.pop(event.request_id, None)
                if key is not None and self.failures:
                    self._calls[key].append(event)

    def take(self, request: ModelRequest, request_hash: str | None = None) -> Outcome | None:
        """The next recorded outcome of this request in its episode, if any is left.

        ``request_hash``: the request's content hash, when the caller has it already."""
        request_hash = request_hash or request.content_hash()
        queue = self._calls.get((request.episode_id, request.purpose, request_hash))
        if not queue:
            return None
        self.served += 1
        return queue.popleft()

    def __len__(self) -> int:
        return sum(len(q) for q in self._calls.values())


class UnrecordedBackend:
    """The backend behind a replay: every request it sees is one the log lacks."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        raise NotRecorded(
            f"no recorded answer for {request.role}/{request.purpose} of {request.episode_id}"
        )

    async def aclose(self) -> None:
        """Holds nothing."""
