"""Giving freed memory back to the system once an edit is over.

A large edit frees hundreds of MB of pictures and arrays, but glibc's malloc keeps much of what it freed in its
heaps (one arena per thread that allocated, and large blocks below its adaptive mmap threshold) rather than
returning it, so a studio's idle memory would grow with every large edit it served. `malloc_trim(0)` hands
the free pages of every arena back; elsewhere (another C library) there is nothing to do.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def give_back_memory() -> bool:
    """Return freed heap memory to the system (glibc's malloc_trim); False where the C library cannot."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
