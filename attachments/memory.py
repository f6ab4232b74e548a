"""How much image memory a worker's threads may hold at once.

Each image job holds what its decode will take (``imaging`` estimates it from
the header) for as long as it works on the pixels. Jobs wait their turn, first
come first served, until their share fits beside what the others hold, so
``--concurrency N`` runs many small images at once but not N huge ones. An
image larger than the whole budget runs alone: slower, never refused.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class MemoryBudget:
    """A number of bytes shared by threads; ``None`` means no limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.held = 0
        self._changed = threading.Condition()
        self._waiting: collections.deque[int] = collections.deque()
        self._tickets = itertools.count()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait for ``nbytes`` to fit beside what others hold, and hold them for the block."""
        if self.limit is None:
            yield
            return
        with self._changed:
            ticket = next(self._tickets)
            self._waiting.append(ticket)
            try:
                # In order of arrival, or a big image could wait forever behind small ones.
                self._changed.wait_for(lambda: self._waiting[0] == ticket and self._fits(nbytes))
            except BaseException:  # interrupted (a worker's second signal): leave the line
                self._waiting.remove(ticket)
                self._changed.notify_all()
                raise
            self._waiting.popleft()
            self.held += nbytes
            self._changed.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._changed:
                self.held -= nbytes
                self._changed.notify_all()

    def _fits(self, nbytes: int) -> bool:
        return self.held == 0 or self.held + nbytes <= (self.limit or 0)


_shared: dict[int | None, MemoryBudget] = {}
_shared_lock = threading.Lock()


def shared(limit: int | None) -> MemoryBudget:
    """The process's budget of ``limit`` bytes, the same object for every thread."""
    with _shared_lock:
        return _shared.setdefault(limit, MemoryBudget(limit))
