"""A CPU model server gives reallocated storage back to the system (cpu_memory.py).

Each case runs in a fresh interpreter, since the setting is process-wide: it frees a
16 MiB block first (glibc then raises its mmap threshold to 16 MiB), allocates an "old"
and a "new" storage of 8 MiB blocks, frees the old one while the new one lives, and
reports how many MiB went back to the system.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only"
)

_CASE = """
import sys
from pathlib import Path

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

big = b"x" * (16 << 20)
del big
if sys.argv[1] == "fixed":
    from prose_sim.models.backends.cpu_memory import return_freed_memory
    if not return_freed_memory():
        print("not glibc")
        sys.exit(0)
old = [b"o" * (8 << 20) for _ in range(20)]
new = [b"n" * (8 << 20) for _ in range(20)]
before = rss_mib()
del old
print(before - rss_mib())
"""


def _returned_mib(mode: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CASE, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return done.stdout.strip()


def test_freed_storage_goes_back_to_the_system_once_a_cpu_server_set_the_threshold():
    returned = _returned_mib("fixed")
    if returned == "not glibc":
        pytest.skip("the C library is not glibc: nothing to set")
    assert int(returned) >= 150  # the old storage, 160 MiB, less the allocator's slack


def test_without_the_setting_glibc_keeps_storage_freed_below_live_storage():
    # why the setting exists: the old storage stays resident behind the new one
    assert int(_returned_mib("default")) < 16


def test_a_threshold_the_user_set_in_the_environment_is_left_alone(monkeypatch):
    from prose_sim.models.backends.cpu_memory import return_freed_memory

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_freed_memory() is False
