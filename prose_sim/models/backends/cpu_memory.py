"""Giving freed CPU memory back to the system while a local model server runs.

On Linux, torch's CPU tensors come from glibc's ``malloc``. A block above the
*mmap threshold* is mapped on its own and returned to the system when freed;
a smaller one comes from the heap, whose free space stays with the process.
glibc raises that threshold each time a mapped block is freed (up to 32 MiB),
so once the engine's KV storage has been reallocated a few times, its per-layer
tensors (a few MiB each) land on the heap, and every reallocation leaves the
old storage resident: in the quickstart that held about 1 GB the process no
longer used (peak RSS 2.4-2.5 GB, of which 0.5 GB live KV storage).

``return_freed_memory`` fixes the threshold (``mallopt(M_MMAP_THRESHOLD)``),
which also stops glibc moving it: blocks of ``threshold`` bytes or more are
mapped, and freeing them returns them at once. It is process-wide, set by each
CPU model server as it starts (setting it again changes nothing); it decides
only where memory comes from, never what a computation gives. Where the C
library is not glibc it does nothing. ``MALLOC_MMAP_THRESHOLD_`` in the environment (glibc's own
variable) wins: a user who set it keeps it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
DEFAULT_THRESHOLD = 1 << 20  # 1 MiB: the KV storage's per-layer tensors are above it


def return_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Map ``threshold``-byte and larger blocks on their own; True when glibc took the setting."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1)
