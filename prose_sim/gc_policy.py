"""The garbage collector's setting while a run is in flight (a process-wide setting: the
command that owns the process applies it, not the library)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def relaxed_gc(threshold: int = 100_000) -> Iterator[None]:
    """Collect cyclic garbage less often while a run is in flight.

    Thousands of live episodes hold millions of objects, and CPython's default
    collection (every 700 allocations, scanning the young generation and, now
    and then, everything) took about half the CPU time of a 3,000-episode run.
    Objects alive before the run (corpus, templates, models) are frozen out of
    the scans. The previous settings come back when the run ends. A process-wide
    setting, so the command that owns the process applies it, not the library.
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
