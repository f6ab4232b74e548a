"""A thread that keeps the locks of a runner's jobs fresh while they run.

A lock not refreshed for ``LOCK_TIMEOUT`` seconds belongs to a dead runner and
its job is queued again (``housekeeping``), so every runner, our worker or a
task backend's, beats for the jobs it holds.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence

from django.db import connections

from . import queue
from .conf import conf

logger = logging.getLogger("attachments")


class Heartbeat:
    """Every ``HEARTBEAT_INTERVAL``, refresh the locks of the jobs ``due`` names, until stopped.

    ``due(interval)`` returns the ids of the jobs to refresh; a runner passes
    only those running for longer than ``interval``, so short jobs never cost
    a write.
    """

    def __init__(self, worker_id: str, due: Callable[[float], Sequence[int]]) -> None:
        self.worker_id = worker_id
        self._due = due
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="attachments-heartbeat", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the caller settles or hands back its jobs once this returns."""
        self._stopped.set()
        if self._thread.is_alive():
            # Bounded: a beat stuck on a dead database must not hold the runner;
            # a late beat is harmless, it only touches rows still locked by us.
            self._thread.join(timeout=1.0)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _beat(self) -> None:
        # Stop signals are for the runner's main thread (ours, or the engine's),
        # whose handlers act on them: never let the kernel deliver one here.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        interval = conf.HEARTBEAT_INTERVAL
        while not self._stopped.wait(interval):
            due = self._due(interval)
            if not due:
                continue
            try:
                queue.heartbeat(self.worker_id, due)
            except Exception:
                logger.exception("Heartbeat failed; retrying in %ss.", interval)
                connections.close_all()  # this thread's own: the next beat reconnects
        connections.close_all()
