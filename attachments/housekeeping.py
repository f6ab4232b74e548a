"""The queue's safety net, run now and then by whatever runs jobs.

Our worker runs it every half minute; with ``BACKEND="tasks"`` a housekeeping
task does (``tasks.housekeep``). Either way it is this one code path: jobs of
runners that stopped sending heartbeats (kill -9, a lost host) are queued again
or, on their last attempt, settled; old failures and dashboard figures are
pruned; uploads left *processing* without a job are queued again, and staged
files nothing names any more are deleted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

from django.db import DatabaseError

from . import leftovers, orphans, processing, queue, stats
from .conf import conf
from .models import Job

logger = logging.getLogger("attachments")

EVERY = 30.0  # seconds; often enough for a LOCK_TIMEOUT of a minute or more
ORPHANS_EVERY = 300.0  # scans every model with attachments: seldom
# Lists the whole staging storage; leftovers wait LEFTOVER_GRACE (a day) anyway.
LEFTOVERS_EVERY = 3600.0


def interval() -> float:
    """Seconds between two runs: often enough that a short LOCK_TIMEOUT is honoured promptly."""
    return min(EVERY, float(conf.LOCK_TIMEOUT) / 2)


class Housekeeping:
    """Housekeeping that remembers when it last did its seldom steps (orphans, leftovers).

    A worker keeps one and its timers. A housekeeping task runs in a new
    process each time, so it passes ``last_run``, the wall-clock time the
    chain of them last ran: a seldom step is due when a multiple of its period
    fell since, which keeps its pace across processes without shared state.
    """

    def __init__(self, *, last_run: float | None = None) -> None:
        self.last_run = last_run
        self._next: dict[str, float] = {}

    def _due(self, step: str, every: float) -> bool:
        if self.last_run is not None:
            return time.time() // every != self.last_run // every
        now = time.monotonic()
        if now < self._next.get(step, now):
            return False
        self._next[step] = now + every
        return True

    def run(self) -> list[Job]:
        """Do every step; return the jobs queued again, which a transport may need to wake.

        A step failing for any reason but the database is logged and the rest
        goes on; a database error is raised for the caller to back off.
        """
        requeued = []
        for job, error, final in queue.recover_abandoned(timedelta(seconds=conf.LOCK_TIMEOUT)):
            if not final:
                logger.warning("Job %s: %s It is queued again.", job.pk, error)
                requeued.append(job)
                continue
            # If settling fails, the job stays failed and a retry finishes it.
            with going_on("Job %s: %s Settling it failed; it stays failed.", job.pk, error):
                published = processing.settle_lost(job, error) is processing.Outcome.READY
                what = "It had published its upload: cleaned up." if published else "It failed."
                logger.warning("Job %s: %s %s", job.pk, error, what)
        if conf.KEEP_FAILED_DAYS is not None:
            queue.prune_failed(timedelta(days=conf.KEEP_FAILED_DAYS))
        stats.prune()
        if self._due("orphans", ORPHANS_EVERY):
            with going_on("Looking for uploads without a job failed; will try again."):
                orphans.requeue(timedelta(seconds=conf.LOCK_TIMEOUT))
        if conf.LEFTOVER_GRACE is not None and self._due("leftovers", LEFTOVERS_EVERY):
            with going_on("Deleting staging leftovers failed; will try again."):
                leftovers.sweep(timedelta(seconds=conf.LEFTOVER_GRACE))
        return requeued


@contextlib.contextmanager
def going_on(message: str, *args: object) -> Iterator[None]:
    """Log ``message`` and go on when a housekeeping step fails for any reason but the database.

    Housekeeping is a safety net (storage deletes, a project's signal receivers),
    never a reason to stop working; a database error goes on to the caller,
    which backs off and reconnects.
    """
    try:
        yield
    except DatabaseError:
        raise
    except Exception:
        logger.exception(message, *args)
