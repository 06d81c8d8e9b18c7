"""Pausing Python's cycle collector while a bulk import builds hundreds of thousands of small lists and tuples.

Those containers hold no cycles, yet each full collection walks all of them; an import of 100,000
rows spends a third of its time there. Reference counting still frees memory as usual. Nested and
concurrent pauses are counted, so the collector runs again when the last one ends (if it was on).
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body with automatic garbage collection off, restoring it afterwards."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
