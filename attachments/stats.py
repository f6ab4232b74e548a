"""Figures for the admin's job dashboard: the queue by state, and throughput.

Finished jobs are deleted, so what they were is counted by the workers: each
keeps per-minute totals in memory (``MinuteCounts``) and now and then writes
its own ``WorkerStat`` rows in one upsert, never a query per job. The
dashboard sums those rows per minute across workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import Job, WorkerStat

# Rows older than this are pruned by the workers' housekeeping.
KEEP = timedelta(hours=1)
# Seconds between a worker's writes; the dashboard lags at most this much.
FLUSH_EVERY = 5.0
STATES = ("waiting", "scheduled", "retrying", "running", "failed")


def state_filter(state: str, now: datetime) -> Q:
    """Return the condition for jobs in ``state`` at ``now``, decided as ``Job.state`` does."""
    pending = Q(failed_at__isnull=True, locked_by="")
    conditions = {
        "waiting": pending & Q(run_at__lte=now),
        "scheduled": pending & Q(run_at__gt=now, attempts=0),
        "retrying": pending & Q(run_at__gt=now, attempts__gt=0),
        "running": Q(failed_at__isnull=True) & ~Q(locked_by=""),
        "failed": Q(failed_at__isnull=False),
    }
    return conditions[state]


def queue_counts(now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Count jobs per queue and state, in one query: ``{queue: {state: n}}``."""
    now = now or timezone.now()
    counts = {state: Count("pk", filter=state_filter(state, now)) for state in STATES}
    rows: Iterable[Mapping[str, Any]] = (
        Job.objects.order_by("queue").values("queue").annotate(**counts)
    )
    return {row["queue"]: {state: row[state] for state in STATES} for row in rows}


class MinuteCounts:
    """One worker's finished jobs per minute, kept in memory between flushes.

    ``add`` is called once per job from any of the worker's threads, so it is a
    dict update under a lock; the database sees only ``flush``.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[int, tuple[int, int]] = {}  # minute since epoch -> processed, failed
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._next_flush = 0.0  # time.monotonic()

    def add(self, *, failed: bool) -> None:
        """Count one finished job in the current minute."""
        minute = int(self._clock() // 60)
        with self._lock:
            processed, failures = self._counts.get(minute, (0, 0))
            self._counts[minute] = (processed + 1, failures + failed)
            self._dirty.add(minute)

    def due(self) -> bool:
        """Say whether there is something to write and the last flush is ``FLUSH_EVERY`` old."""
        return bool(self._dirty) and time.monotonic() >= self._next_flush

    def flush(self, worker: str) -> int:
        """Write the totals of the minutes counted since the last flush; return rows written."""
        with self._lock:
            self._next_flush = time.monotonic() + FLUSH_EVERY
            dirty, self._dirty = self._dirty, set()
            rows = [
                WorkerStat(
                    worker=worker,
                    minute=_minute_start(minute),
                    processed=self._counts[minute][0],
                    failed=self._counts[minute][1],
                )
                for minute in sorted(dirty)
            ]
        if not rows:
            return 0
        try:
            # Absolute totals: a worker owns its rows, so rewriting them cannot
            # lose another worker's counts, and a failed flush is simply redone.
            WorkerStat.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["worker", "minute"],
                update_fields=["processed", "failed"],
            )
        except BaseException:
            with self._lock:
                self._dirty |= dirty
            raise
        # Minutes are kept as long as their rows, so a clock set back a little
        # adds to the right totals instead of overwriting them with new ones.
        horizon = int(self._clock() // 60) - KEEP // timedelta(minutes=1)
        with self._lock:
            for minute in [m for m in self._counts if m < horizon and m not in self._dirty]:
                del self._counts[minute]
        return len(rows)


def prune(older_than: timedelta = KEEP) -> int:
    """Delete the rows of minutes older than ``older_than``; return how many."""
    cutoff = _minute_start(int((time.time() - older_than.total_seconds()) // 60))
    deleted, _ = WorkerStat.objects.filter(minute__lt=cutoff).delete()
    return deleted


@dataclass(frozen=True)
class Minute:
    start: datetime
    processed: int
    failed: int


@dataclass(frozen=True)
class Throughput:
    minutes: list[Minute]  # oldest first, the current (partial) minute last
    rate: float  # jobs per minute over the last ``RATE_MINUTES``
    failure_rate: float


RATE_MINUTES = 5


def throughput(minutes: int = 15, *, now: float | None = None) -> Throughput:
    """Sum every worker's rows per minute for the last ``minutes`` minutes, in one query."""
    now = time.time() if now is None else now
    current = int(now // 60)
    starts = [_minute_start(m) for m in range(current - minutes + 1, current + 1)]
    rows = (
        WorkerStat.objects.filter(minute__gte=starts[0], minute__lte=starts[-1])
        .order_by()
        .values("minute")
        .annotate(processed=Sum("processed"), failed=Sum("failed"))
    )
    sums = {row["minute"]: (row["processed"], row["failed"]) for row in rows}
    series = [Minute(start, *sums.get(start, (0, 0))) for start in starts]
    # The current minute has only just begun: divide by the time really covered.
    recent = series[-RATE_MINUTES:]
    elapsed = (len(recent) - 1) + (now % 60) / 60
    return Throughput(
        minutes=series,
        rate=sum(m.processed for m in recent) / elapsed if elapsed else 0.0,
        failure_rate=sum(m.failed for m in recent) / elapsed if elapsed else 0.0,
    )


def _minute_start(minute: int) -> datetime:
    start = datetime.fromtimestamp(minute * 60, tz=UTC)
    return start if settings.USE_TZ else timezone.make_naive(start)
