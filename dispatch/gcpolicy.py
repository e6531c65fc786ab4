"""When the cyclic garbage collector may pause the server.

Theory of operation
-------------------
CPython frees most objects by reference counting; its cyclic collector only finds groups of
objects that refer to each other. It runs by generation: the young ones often and briefly,
the oldest ("full", generation 2) whenever it has grown by a quarter since the last time. A
full collection visits *every* tracked object in the process, and nothing else runs while it
does. Each volunteer socket keeps ~180 such objects alive (the protocol, its queue, its task,
buffers, frames), so with 10,000 volunteers connected the process tracks ~1.8 million and a
full collection took 0.6-1.1 s on the development VM (measured with a ``gc.callbacks`` hook
during ``benchmarks/bench_service.py``): an offer queued during it waits that long. As the
sockets connect in the morning, the "grew by a quarter" rule fires again and again.

The policy (:class:`GcPolicy`, installed by the service for its process):

1. Full collections are never automatic (``threshold2`` is set out of reach). The young
   generations stay automatic: their pauses are bounded by the young objects (a few ms).
2. A full collection runs from the service's timer when one is due (``full_every_s`` since
   the last, default 10 minutes) and the engine is quiet (no offer open: nobody's answer is
   waiting on the server); if the engine is never quiet, at the latest ``full_max_s`` after
   the last (default an hour), so cycles of garbage are never kept for long.
3. Every collection's pause is observed in ``dispatch_gc_pause_seconds{generation}``, so a
   pause that matters shows on the dashboards.

GC state belongs to the whole process: :meth:`GcPolicy.install` records the thresholds it
replaces and :meth:`GcPolicy.uninstall` puts them back (tests run several services, one after
another, in one process).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["GcPolicy"]

#: ``threshold2`` that automatic collection never reaches (it counts generation-1 runs).
_NEVER: Final = 2**31 - 1


class GcPolicy:
    """Schedules full collections (see the module doc).

    Args:
        full_every_s: a full collection is due this long after the last one, seconds.
        full_max_s: ... and runs even when the engine is busy this long after the last.
        on_pause: called with (generation, seconds) after every collection, automatic or not.

    Raises:
        ValueError: a period is not positive, or ``full_max_s < full_every_s``.
    """

    def __init__(
        self,
        *,
        full_every_s: float = 600.0,
        full_max_s: float = 3600.0,
        on_pause: Callable[[int, float], None] | None = None,
    ) -> None:
        if not (math.isfinite(full_every_s) and full_every_s > 0):
            raise ValueError(f"full_every_s must be > 0, got {full_every_s}")
        if not (math.isfinite(full_max_s) and full_max_s >= full_every_s):
            raise ValueError(f"full_max_s must be >= full_every_s, got {full_max_s}")
        self.full_every_s: Final = full_every_s
        self.full_max_s: Final = full_max_s
        self._on_pause = on_pause
        self._saved: tuple[int, int, int] | None = None
        self._last_full: float | None = None
        self._started = 0.0
        self.full_collections = 0

    @property
    def installed(self) -> bool:
        return self._saved is not None

    def install(self, now: float) -> None:
        """Switch automatic full collections off and start observing pauses; ``now`` (the
        service's clock) starts the schedule. Installing twice is an error."""
        if self._saved is not None:
            raise RuntimeError("GcPolicy is already installed")
        threshold0, threshold1, threshold2 = gc.get_threshold()
        self._saved = (threshold0, threshold1, threshold2)
        gc.set_threshold(threshold0, threshold1, _NEVER)
        gc.callbacks.append(self._observe)
        self._last_full = now

    def uninstall(self) -> None:
        """Put the collector back as :meth:`install` found it (no-op if not installed)."""
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        self._saved = None
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)

    def due(self, now: float, *, quiet: bool) -> bool:
        """Whether :meth:`maybe_collect` would collect now."""
        if self._last_full is None:
            return False
        since = now - self._last_full
        return since >= self.full_max_s or (quiet and since >= self.full_every_s)

    def maybe_collect(self, now: float, *, quiet: bool) -> bool:
        """Run a full collection if one is due; returns whether it ran."""
        if not self.due(now, quiet=quiet):
            return False
        gc.collect()
        self._last_full = now
        self.full_collections += 1
        return True

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._on_pause is not None:
            self._on_pause(int(info["generation"]), time.perf_counter() - self._started)
