"""A stop signal is acted on in its handler: the run's episodes are cancelled before the event
loop gets control back, however long the loop's current pass is (with 10,000 episodes in flight
one pass takes seconds). The latency itself is measured by benchmarks/ctrl_c_latency.py."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading

import anyio
import msgspec
import pytest

from prose_sim.config import RunOptions
from prose_sim.models.backends.scripted import ScriptedBackend
from prose_sim.models.protocol import ROLES
from prose_sim.runtime.control import RunControl
from prose_sim.runtime.prepare import Doubles, prepare
from prose_sim.runtime.runner import execute
from prose_sim.runtime.signals import STOP_SIGNALS
from prose_sim.scenario import scenario_from_dict


class SignalsMidStep(ScriptedBackend):
    """Sends SIGINT to its own process in the middle of its first answer, then looks (without
    yielding to the event loop) whether the run was stopped."""

    deadline_after_signal: float | None = None

    async def complete(self, request):
        if self.deadline_after_signal is None:
            os.kill(os.getpid(), signal.SIGINT)
            # a cancelled scope's effective deadline is -inf
            self.deadline_after_signal = anyio.current_effective_deadline()
        return await super().complete(request)


@pytest.fixture
def restored_signal_handlers():
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _scenario(seeds: int):
    return scenario_from_dict(
        {
            "name": "stop",
            "seeds": list(range(1, seeds + 1)),
            "demonstrations_per_user": 2,
            "tasks": {"summarization": {}, "email_writing": {}},
            "methods": {"no_learning": {}},
            "metrics": {"bertscore": ""},
        },
        "test",
    )


@pytest.mark.anyio
async def test_a_stop_signal_cancels_the_run_before_the_loop_runs_again(
    tmp_path, restored_signal_handlers
):
    backend = SignalsMidStep()
    before = signal.getsignal(signal.SIGINT)
    outcome = await execute(
        prepare(
            _scenario(seeds=20),
            tmp_path / "run",
            RunOptions(progress="off"),
            doubles=Doubles(backends=dict.fromkeys(ROLES, backend)),
        )
    )
    assert backend.deadline_after_signal == -math.inf
    assert outcome.status == "interrupted" and outcome.stop == "signal"
    assert outcome.signal == signal.SIGINT and outcome.episodes_completed == 0
    summary = msgspec.json.decode((tmp_path / "run" / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
    assert (tmp_path / "run" / "results.csv").exists()
    # a second signal would now exit at once: the handler before the run is not given back
    assert signal.getsignal(signal.SIGINT) is not before


@pytest.mark.anyio
async def test_a_run_without_a_signal_gives_its_handlers_back(tmp_path, restored_signal_handlers):
    before = signal.getsignal(signal.SIGINT)
    outcome = await execute(
        prepare(
            _scenario(seeds=1),
            tmp_path / "run",
            RunOptions(progress="off"),
            doubles=Doubles(backends=dict.fromkeys(ROLES, ScriptedBackend())),
        )
    )
    assert outcome.status == "completed"
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.anyio
async def test_with_a_quick_exit_a_signal_cancels_nothing_and_exits_at_the_next_checkpoint():
    control, scope, exits = RunControl(), anyio.CancelScope(), []
    control.attach(scope)
    control.exit_on_signal(lambda: exits.append(control.status))
    control.stop("signal", "SIGINT", signum=signal.SIGINT)  # in the signal handler
    assert not scope.cancel_called and exits == []
    control.checkpoint()  # the next event an episode publishes, or the loop's next callback
    control.checkpoint()
    assert exits == ["interrupted"]


@pytest.mark.anyio
async def test_with_a_quick_exit_other_stops_still_cancel_the_episodes():
    control, scope, exits = RunControl(), anyio.CancelScope(), []
    control.attach(scope)
    control.exit_on_signal(lambda: exits.append(1))
    control.stop("fatal", "wrong key")
    control.checkpoint()
    assert scope.cancel_called and exits == []


class _Exited(Exception):
    """Stands for ``os._exit`` in the quick exit's ``on_signal``."""


@pytest.mark.anyio
async def test_the_quick_exit_stops_the_progress_thread_before_it_hands_over(
    tmp_path, restored_signal_handlers
):
    progress_threads: list[list[str]] = []

    def on_signal(outcome) -> None:
        names = [t.name for t in threading.enumerate() if t.name == "prose_sim progress"]
        progress_threads.append(names)
        raise _Exited

    # a real on_signal ends the process; this one raises, and the run, its files closed, fails
    with contextlib.suppress(Exception):
        await execute(
            prepare(
                _scenario(seeds=2),
                tmp_path / "run",
                RunOptions(progress="log"),
                doubles=Doubles(backends=dict.fromkeys(ROLES, SignalsMidStep())),
            ),
            on_signal=on_signal,
        )
    assert progress_threads == [[]]  # stopped (its last line finished) before the hand-over
