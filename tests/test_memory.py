"""glibc's thresholds: a freed tensor buffer stays in the process for the next one."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from razzle.memory import memory_allocator

# Allocates an 8 MiB tensor and frees it, then twenty more (glibc's free lists settle),
# then two hundred more, and reports glibc's own account (mallinfo2): the bytes in mmapped
# blocks while the first is held, and the heap's size then, after freeing it, after the
# twenty and after the two hundred.
PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    import torch
    from razzle.memory import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    buffer = torch.empty(2 << 20)
    held = libc.mallinfo2()
    del buffer
    freed = libc.mallinfo2()
    heaps = []
    for cycles in (20, 200):
        for _ in range(cycles):
            buffer = torch.empty(2 << 20)
            del buffer
        heaps.append(libc.mallinfo2().arena)
    print(json.dumps({"kept": kept, "mmapped": held.hblkhd, "heap_held": held.arena,
                      "heap_freed": freed.arena, "heap_settled": heaps[0], "heap_after": heaps[1]}))
    """
)
MIB = 1 << 20


def probe(mode: str, **settings: str) -> dict:
    """The probe's figures on glibc's defaults plus `settings` (environment variables)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MALLOC_", "LD_PRELOAD"))}
    env.pop("GLIBC_TUNABLES", None)
    env.update(settings)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or memory_allocator() != "system", reason="glibc's malloc only"
)


def test_glibc_defaults_map_a_large_buffer_from_the_system():
    """The control: without the thresholds set, glibc mmaps the buffer (so the probe
    measures what the other test claims to change)."""
    assert probe("defaults")["mmapped"] >= 8 * MIB


def test_kept_thresholds_reuse_a_freed_buffer_from_the_heap():
    figures = probe("keep")
    assert figures["kept"] is True
    assert figures["mmapped"] < 8 * MIB
    assert figures["heap_held"] >= 8 * MIB
    assert figures["heap_freed"] == figures["heap_held"]  # not trimmed
    # Two hundred more buffers grew the heap by less than one: they reused freed memory.
    assert figures["heap_after"] < figures["heap_settled"] + 8 * MIB


def test_a_users_own_malloc_settings_win():
    figures = probe("keep", MALLOC_MMAP_THRESHOLD_=str(64 << 10))
    assert figures["kept"] is False
    assert figures["mmapped"] >= 8 * MIB
