"""The worker loop behind ``manage.py process_attachments``.

It only orchestrates: claim a job (``queue``), run it (``processing``), repeat;
sleep when nothing is due; stop cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from django.db import connections

from . import processing, queue
from .conf import conf
from .models import Job

logger = logging.getLogger("attachments")


@dataclass
class Stats:
    processed: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    def record(self, outcome: processing.Outcome) -> None:
        self.processed += 1
        if outcome in (processing.Outcome.FAILED, processing.Outcome.RETRYING):
            self.failed += 1

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.processed / elapsed if elapsed > 0 else 0.0

    def __str__(self) -> str:
        noun = "job" if self.processed == 1 else "jobs"
        return f"{self.processed} {noun} processed at {self.rate:.1f} j/s, {self.failed} failed"


class Worker:
    """Claim and run jobs until stopped, or until nothing is due when ``burst``."""

    def __init__(
        self,
        *,
        queues: Sequence[str] = (),
        burst: bool = False,
        poll_interval: float | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.queues = tuple(queues)
        self.burst = burst
        self.poll_interval = conf.POLL_INTERVAL if poll_interval is None else poll_interval
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Finish the job at hand, then return from ``run``."""
        self._stopping.set()

    def run(self) -> Stats:
        """Work until stopped; return what was done."""
        logger.info("Worker %s started (queues: %s)", self.id, ", ".join(self.queues) or "all")
        with self._signals():
            while not self._stopping.is_set():
                _refresh_connections()
                job = queue.claim(self.id, self.queues)
                if job is None:
                    if self.burst:
                        break
                    self._stopping.wait(self.poll_interval)
                    continue
                self._run_one(job)
        _refresh_connections()
        logger.info("Worker %s stopped: %s", self.id, self.stats)
        return self.stats

    def _run_one(self, job: Job) -> None:
        started = time.monotonic()
        try:
            outcome = processing.run(job)
        except BaseException:
            # Interrupted (second signal) or the database failed under us:
            # hand the job back rather than leave it locked.
            queue.release(job)
            raise
        self.stats.record(outcome)
        logger.info(
            "Job %s %s#%s %s in %.0f ms",
            job.pk,
            job.target,
            job.object_id,
            outcome.value,
            (time.monotonic() - started) * 1000,
        )

    def _signals(self) -> _SignalHandlers:
        return _SignalHandlers(self)


def _refresh_connections() -> None:
    # Like close_old_connections(), which a long-lived process must call itself
    # (no request cycle does it here), but never inside a transaction: a caller
    # that runs the worker in one (tests, embedding code) keeps its connection.
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _SignalHandlers:
    """First SIGINT/SIGTERM: stop after the current job. Second: stop now."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.worker._stopping.is_set():
            raise KeyboardInterrupt
        logger.info("Received %s: finishing the current job.", signal.Signals(signum).name)
        self.worker.stop()
