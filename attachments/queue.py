"""Put jobs in the table and take them out again.

Every transition is one conditional UPDATE on the job row, so two workers can
never both own a job, and a worker that lost its lock cannot overwrite a job
that was handed to somebody else.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.utils import timezone

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
    previous: str = "",
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 10,
) -> Enqueued:
    """Add a job for ``source``, replacing every job of the same record that is not running.

    ``previous`` is the published version the new upload replaces; when the
    record had no published version of its own (it was still processing), the
    version an older job was going to replace is carried over, so it is still
    deleted once the newest upload is ready.
    """
    with transaction.atomic(using=router.db_for_write(Job)):
        older = list(Job.objects.for_target(target, object_id).order_by("-id"))
        if not previous:
            previous = next((job.previous for job in older if job.previous), "")
        replaced = [job for job in older if not job.locked_by]
        Job.objects.filter(pk__in=[job.pk for job in replaced], locked_by="").delete()
        job = Job.objects.create(
            target=target,
            object_id=str(object_id),
            source=source,
            previous="" if previous == source else previous,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
        )
    return Enqueued(job, tuple(j.source for j in replaced if j.source != source))


def claim(worker_id: str, queues: Sequence[str] = ()) -> Job | None:
    """Lock the next due job for ``worker_id`` and return it, or None when nothing is due."""
    using = router.db_for_write(Job)
    skip_locked = connections[using].features.has_select_for_update_skip_locked
    while True:
        with transaction.atomic(using=using):
            candidates = Job.objects.using(using).due()
            if queues:
                candidates = candidates.filter(queue__in=queues)
            if skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            job = candidates.only("pk").first()
            if job is None:
                return None
            now = timezone.now()
            # Without SKIP LOCKED another worker may have taken it meanwhile:
            # the condition makes exactly one of us win.
            won = (
                Job.objects.using(using)
                .filter(pk=job.pk, locked_by="", failed_at__isnull=True)
                .update(locked_by=worker_id, locked_at=now)
            )
        if won:
            return Job.objects.using(using).get(pk=job.pk)


def complete(job: Job) -> None:
    """Delete a job that has done its work."""
    Job.objects.filter(pk=job.pk, locked_by=job.locked_by).delete()


def release(job: Job) -> None:
    """Hand a job back to the queue untouched, as if it had never been claimed."""
    Job.objects.filter(pk=job.pk, locked_by=job.locked_by).update(locked_by="", locked_at=None)


def backoff(attempts: int) -> timedelta:
    """Return the wait before retry number ``attempts``, Sidekiq's formula with jitter."""
    return timedelta(seconds=attempts**4 + 15 + random.randint(0, 10) * (attempts + 1))


def fail(job: Job, error: BaseException, *, permanent: bool = False) -> bool:
    """Record a failed attempt; return True when the job will not be tried again."""
    now = timezone.now()
    job.attempts += 1
    job.last_error = "".join(traceback.format_exception(error)).strip()
    final = permanent or job.attempts >= job.max_attempts
    job.failed_at = now if final else None
    job.run_at = now if final else now + backoff(job.attempts)
    Job.objects.filter(pk=job.pk, locked_by=job.locked_by).update(
        attempts=job.attempts,
        last_error=job.last_error,
        failed_at=job.failed_at,
        run_at=job.run_at,
        locked_by="",
        locked_at=None,
    )
    job.locked_by, job.locked_at = "", None
    return final


def retry(job: Job) -> None:
    """Make a failed or scheduled job due now, with a fresh count of attempts."""
    Job.objects.filter(pk=job.pk, locked_by="").update(
        failed_at=None, attempts=0, run_at=timezone.now()
    )


def discard_target(target: str, object_id: object) -> int:
    """Delete the jobs of a record that are not running; a running one finds it gone."""
    deleted, _ = Job.objects.for_target(target, object_id).filter(locked_by="").delete()
    return deleted
