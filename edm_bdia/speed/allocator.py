"""Freed CPU memory kept in the process heap (glibc), so that network calls do not page-fault their buffers anew.

By default glibc serves every allocation above a moving threshold (at most 32 MiB) with a fresh `mmap` and returns
it to the kernel on free, and gives the free top of the heap back whenever it exceeds a trim threshold. A network
call allocates and frees the same activation-sized buffers layer after layer, so each call then touches new pages
that the kernel has to zero. Two `mallopt` settings keep the memory instead (docs/performance.md, 'Allocator', has
the page-fault counts); they change no number a kernel computes, only where its buffers come from. The cost: memory freed during a run stays with the
process. The setting is process-wide, so the command lines make it and the library never does on its own.
"""

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
# Allocations up to this size come from the heap. Where glibc refuses that (some releases cap the threshold at 32 MiB,
# half their heap size on 64-bit), the 32 MiB ceiling is used.
MMAP_THRESHOLDS = (1 << 30, 32 << 20)
TRIM_THRESHOLD = 2 ** 31 - 1  # the largest int: never give the heap's free top back during a run


def _glibc():
    """The running process's C library if it is glibc (has mallopt), else None."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, 'gnu_get_libc_version') or not hasattr(libc, 'mallopt'):
        return None  # musl and other C libraries
    return libc


def retain_freed_memory():
    """Keep freed memory in this process's heap (process-wide, idempotent). Returns the mmap threshold set in
    bytes, or None where the C library is not glibc (nothing is changed there)."""
    libc = _glibc()
    if libc is None:
        return None
    for threshold in MMAP_THRESHOLDS:
        if libc.mallopt(M_MMAP_THRESHOLD, threshold):
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            return threshold
    return None
