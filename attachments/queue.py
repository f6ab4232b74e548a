"""Put jobs in the table and take them out again.

Every transition is one conditional UPDATE on the job row, so two workers can
never both own a job, and a worker that lost its lock cannot overwrite a job
that was handed to somebody else.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from . import claims
from .claims.postgresql import CHANNEL
from .conf import conf
from .models import Job


@dataclass(frozen=True)
class Enqueued:
    job: Job
    # Staged originals of replaced jobs, for the caller to delete on commit.
    superseded_sources: tuple[str, ...]


def enqueue(
    *,
    target: str,
    object_id: object,
    source: str,
    previous: Iterable[str] = (),
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 10,
    new_record: bool = False,
) -> Enqueued:
    """Add a job for ``source``, replacing every job of the same record that is not running.

    ``new_record`` says the record was just created, so it has no jobs to replace.

    ``previous`` names the versions the new upload replaces; those that older
    jobs of the record were going to replace are carried over, so each is
    deleted once the newest upload is ready, whichever job got to run.
    """
    job = Job(
        target=target,
        object_id=str(object_id),
        source=source,
        previous=claims.merge_previous(source, list(previous)),
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
    )
    replaced = claims.for_database(router.db_for_write(Job)).enqueue(job, new_record=new_record)
    return Enqueued(job, tuple(name for name in replaced if name != source))


def enqueue_missing(
    *,
    target: str,
    sources: Iterable[tuple[object, str]],
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 10,
) -> int:
    """Add a job for each ``(object_id, source)`` whose record has none; return how many.

    The bulk enqueue (reprocessing, imports): a record with a job waiting or
    running needs no other. One commit, its own or the caller's; workers are
    woken once.
    """
    records = [(str(object_id), source) for object_id, source in sources]
    batch = claims.Batch(target, queue, priority, max_attempts, records)
    return claims.for_database(router.db_for_write(Job)).enqueue_missing(batch)


def notify(queue_name: str) -> None:
    """Wake idle workers when the current transaction commits (PostgreSQL only)."""
    connection = connections[router.db_for_write(Job)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue_name])


def claim(
    worker_id: str,
    queues: Sequence[str] = (),
    *,
    min_priority: int | None = None,
    max_priority: int | None = None,
    finished: Collection[int] = (),
) -> Job | None:
    """Lock the next due job for ``worker_id`` and return it, or None when nothing is due.

    ``queues`` are tried strictly in the given order (empty: every queue, by
    priority then age); ``min_priority``/``max_priority`` bound the priorities served.

    ``finished`` are ids of jobs ``worker_id`` has done; they are deleted in the
    claim's own commit, so a busy worker pays one commit (one disk sync) per
    job instead of two. If the claim raises, they are not deleted.
    """
    claimer = claims.for_database(router.db_for_write(Job))
    for name in queues or (None,):
        job = claimer.claim(worker_id, name, min_priority, max_priority, finished)
        finished = ()
        if job is not None:
            return job
    return None


def claim_job(job_id: int, worker_id: str) -> Job | None:
    """Lock job ``job_id`` for ``worker_id`` if it is due; return it, or None.

    How a runner woken for one job (a task backend's) takes it: the same
    conditional UPDATE as ``claim``, so of two deliveries of the same wake-up,
    or a task and our worker, only one runs the job.
    """
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, failed_at=None, locked_by="", run_at__lte=now).update(
        locked_by=worker_id, locked_at=now
    )
    return Job.objects.filter(pk=job_id, locked_by=worker_id).first() if claimed else None


# Starts the ``last_error`` of a waiting job whose wake-up a task backend did not take.
UNSENT = "Not sent to the task backend; housekeeping sends it again: "


def mark_unsent(job: Job, error: BaseException) -> None:
    """Note on a waiting job that no runner could be woken for it, before any earlier error.

    The dashboard shows it; ``unsent`` finds the job again once the backend is back.
    """
    note = f"{UNSENT}{type(error).__name__}: {error}\n\n"
    Job.objects.filter(pk=job.pk, failed_at=None, locked_by="").exclude(
        last_error__startswith=UNSENT
    ).update(last_error=Concat(Value(note), F("last_error"), output_field=TextField()))


def unsent(limit: int) -> list[Job]:
    """Return waiting jobs that ``mark_unsent`` noted, oldest first."""
    jobs = Job.objects.filter(failed_at=None, locked_by="", last_error__startswith=UNSENT)
    return list(jobs.order_by("id")[:limit])


def mark_sent(job: Job) -> None:
    """Drop the note ``mark_unsent`` left on ``job``, keeping the error it was put before."""
    earlier = job.last_error.partition("\n\n")[2]
    Job.objects.filter(pk=job.pk, last_error=job.last_error).update(last_error=earlier)


def complete(worker_id: str, job_ids: Collection[int]) -> None:
    """Delete jobs that ``worker_id`` has done; a busy worker passes them to ``claim``."""
    claims.for_database(router.db_for_write(Job)).complete(worker_id, job_ids)


def release(job: Job) -> None:
    """Hand a job back to the queue untouched, as if it had never been claimed."""
    Job.objects.filter(pk=job.pk, locked_by=job.locked_by).update(locked_by="", locked_at=None)


def backoff(attempts: int) -> timedelta:
    """Return the wait before retry number ``attempts``, Sidekiq's formula with jitter."""
    seconds = attempts**4 + 15 + random.randint(0, 10) * (attempts + 1)
    return timedelta(seconds=seconds * conf.BACKOFF_SCALE)


def fail(job: Job, error: BaseException, *, permanent: bool = False) -> bool:
    """Record a failed attempt; return True when the job will not be tried again."""
    return _fail(job, error, permanent=permanent, lock=Q(locked_by=job.locked_by))


def _fail(job: Job, error: BaseException, *, permanent: bool, lock: Q) -> bool:
    now = timezone.now()
    attempts = job.attempts + 1
    final = permanent or attempts >= job.max_attempts
    changes = {
        "attempts": attempts,
        "last_error": "".join(traceback.format_exception(error)).strip(),
        "failed_at": now if final else None,
        "run_at": now if final else now + backoff(attempts),
        "locked_by": "",
        "locked_at": None,
    }
    if not Job.objects.filter(lock, pk=job.pk).update(**changes):
        return False  # somebody else settled it meanwhile
    for name, value in changes.items():
        setattr(job, name, value)
    return final


def retry(job: Job) -> bool:
    """Make a failed or scheduled job due now, with a fresh count of attempts.

    Returns False when there was nothing to retry: the job is running or gone.
    """
    with transaction.atomic(using=router.db_for_write(Job)):
        retried = Job.objects.filter(pk=job.pk, locked_by="").update(
            failed_at=None, attempts=0, run_at=timezone.now()
        )
        if retried:
            notify(job.queue)
    return bool(retried)


def discard(job: Job) -> bool:
    """Delete a job that is not running; return False when it is running or gone."""
    deleted, _ = Job.objects.filter(pk=job.pk, locked_by="").delete()
    return bool(deleted)


class NotHeld(Exception):
    """The job was handed back, or taken over by another worker, while this one ran it."""


def holds(job: Job) -> bool:
    """Whether ``job`` is still locked by the worker that claimed it; locks its row till commit."""
    return claims.for_database(router.db_for_write(Job)).holds(job)


def heartbeat(worker_id: str, job_ids: Sequence[int]) -> None:
    """Show that ``worker_id`` is still working on ``job_ids``."""
    Job.objects.filter(pk__in=job_ids, locked_by=worker_id).update(locked_at=timezone.now())


class WorkerLost(Exception):
    """The worker that ran a job stopped sending heartbeats (killed, host lost)."""


def recover_abandoned(timeout: timedelta) -> list[tuple[Job, WorkerLost, bool]]:
    """Put back the jobs of workers silent for ``timeout``, counting the attempt.

    Returns each recovered job, the error recorded on it, and whether that was
    its last attempt.
    """
    recovered = []
    for job in Job.objects.running().filter(locked_at__lt=timezone.now() - timeout):
        error = WorkerLost(
            f"Worker {job.locked_by} stopped responding while running this job "
            f"(no heartbeat since {job.locked_at:%Y-%m-%d %H:%M:%S %Z})."
        )
        # Conditional on the lock we saw: a worker that was merely slow and has
        # since sent a heartbeat keeps its job.
        lock = Q(locked_by=job.locked_by, locked_at=job.locked_at)
        attempts_before = job.attempts
        final = _fail(job, error, permanent=False, lock=lock)
        if job.attempts != attempts_before:
            recovered.append((job, error, final))
    return recovered


def prune_failed(older_than: timedelta) -> int:
    """Delete jobs that failed for good longer than ``older_than`` ago."""
    deleted, _ = Job.objects.failed().filter(failed_at__lt=timezone.now() - older_than).delete()
    return deleted


def discard_target(target: str, object_id: object) -> list[str]:
    """Delete the jobs of a record that are not running; a running one finds it gone.

    Returns every version the record's jobs name, running ones included: the
    uploads they were to publish and the versions they were to replace. Once
    the record is deleted or emptied, nothing else would delete those files.
    """
    with transaction.atomic(using=router.db_for_write(Job), savepoint=False):
        jobs = list(Job.objects.for_target(target, object_id))
        Job.objects.filter(pk__in=[job.pk for job in jobs], locked_by="").delete()
    return list(dict.fromkeys(name for job in jobs for name in (job.source, *job.previous_names)))
