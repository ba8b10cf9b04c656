"""The process's memory allocator: which malloc it runs on, and glibc's set for tensors.

glibc's malloc hands a block above its mmap threshold (128 KiB at first, raised as large
blocks are freed) to the system with mmap, and returns the free top of its heap to the
system past its trim threshold. A network's forward pass allocates and frees activation
buffers of hundreds of KiB to tens of MiB on every call, so with those defaults it can
fetch them fresh from the system each time: page faults and zeroing on every call. How
often depends on the heap's history, so the same forward runs at very different speeds
from process to process (the tiny network at batch 128 in a fresh process: 13-14k
positions/s, 20k with the thresholds fixed; README, Performance). Fixed thresholds keep
freed memory in the process for the next call, as tcmalloc and jemalloc do by design.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Blocks from this size are still mmapped: glibc's largest allowed threshold on 64 bits.
MMAP_THRESHOLD = 32 << 20
# Free memory at the heap's top the process keeps rather than hand back: the process
# holds on to its peak use, as PyTorch's own CUDA allocator does on a GPU.
TRIM_THRESHOLD = 1 << 30
# glibc's own settings of its malloc: a user who sets them has chosen.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def memory_allocator() -> str:
    """The malloc this process runs on: tcmalloc or jemalloc when preloaded, else the
    system's ("unknown" without /proc). It moves CPU figures by 10-20% (README,
    Performance), so every bench figure line names it."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return "unknown"
    loaded = maps.read_text()
    return next((name for name in ("tcmalloc", "jemalloc") if name in loaded), "system")


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds so that freed tensor buffers are reused, not
    handed back to the system; True where set. Nothing changes (False) where another
    malloc is preloaded, the C library is not glibc, or the user set glibc's malloc
    through its environment variables or GLIBC_TUNABLES."""
    if not sys.platform.startswith("linux") or memory_allocator() != "system":
        return False
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = ctypes.CDLL(None)  # the symbols the process has loaded
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
