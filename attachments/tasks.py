"""Runners woken by a task backend the project already runs (``BACKEND="tasks"``).

The job table stays the ledger of every upload; a ``django.tasks`` backend
(RQ, Celery, django-tasks-db...) is only the transport that wakes a runner for
a job id. An upload's job is queued with its record exactly as for our worker,
and ``process_attachment(job_id)`` is sent once that commits. The task claims
that job with the queue's conditional UPDATE (of two deliveries, or a task and
our worker, one runs it), keeps its lock fresh, and runs it through
``processing.run``: the same retries with the field's backoff and
``max_attempts``, failures kept in the job row (the admin's dashboard shows
and retries them), every superseded version deleted. A retry is the task sent
again with ``run_after``.

Nothing runs between tasks, so housekeeping is a task too: ``housekeep``,
sent for later by the first runner that finds none pending (``models.Alarm``),
and sent again by itself while the ledger holds work. It queues again the jobs
of runners killed mid-job and wakes runners for them.

This module is imported only by projects that use the Tasks framework (and by
Celery's autodiscovery, which registers the tasks in Celery workers).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from . import djangotasks, housekeeping, processing, queue
from .conf import conf
from .exceptions import JobFailed
from .heartbeat import Heartbeat
from .models import Alarm, Job

logger = logging.getLogger("attachments")

# Jobs woken per housekeeping run whose wake-up the backend did not take.
_UNSENT_LIMIT = 1000


# Declared on the configured alias and queue: Task validates itself against
# its backend on creation. Each send picks the job's own queue and priority.
@djangotasks.task(backend=conf.TASKS_BACKEND, queue_name=conf.QUEUE)
def process_attachment(job_id: int) -> str:
    """Run job ``job_id`` if it is due and nobody runs it; return its outcome's name."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}:task-{uuid.uuid4().hex[:8]}"
    job = queue.claim_job(job_id, worker_id)
    if job is None:
        return _not_claimed(job_id)
    arm()
    # Until the job is settled: if this process dies, the lock goes stale and
    # housekeeping queues the job again.
    with Heartbeat(worker_id, lambda interval: [job.pk]):
        outcome = processing.run(job)
    if outcome.done:
        queue.complete(worker_id, [job.pk])
    elif outcome is processing.Outcome.RETRYING:
        send(job, run_after=job.run_at)
    else:
        # The error is in the job row; raising makes the engine's own record agree.
        raise JobFailed(f"Job {job.pk} ({job}) failed for good:\n{job.last_error}")
    return outcome.value


@djangotasks.task(backend=conf.TASKS_BACKEND, queue_name=conf.QUEUE)
def housekeep(due: str) -> int:
    """Run the queue's housekeeping and wake runners for the jobs it queued again.

    ``due`` is the alarm time this task was sent for: only the task holding
    the current alarm sends the next one, so one chain of them is alive.
    """
    # The chain's previous run was about one interval ago: seldom steps keep their pace.
    last_run = datetime.fromisoformat(due).timestamp() - housekeeping.interval()
    requeued = housekeeping.Housekeeping(last_run=last_run).run()
    now = timezone.now()
    for job in requeued:
        send(job, run_after=job.run_at if job.run_at > now else None)
    unsent = queue.unsent(_UNSENT_LIMIT)
    for job in unsent:
        if send(job, run_after=job.run_at if job.run_at > now else None):
            queue.mark_sent(job)
    if Job.objects.filter(failed_at=None).exists():
        _set_alarm(datetime.fromisoformat(due), now)
    return len(requeued) + len(unsent)


def send(job: Job, *, run_after: datetime | None = None) -> bool:
    """Wake a runner for ``job``, in its queue, now or at ``run_after``; say whether it was sent.

    A failure to send (a broker down) is logged and noted on the job, never
    raised: the job is in the ledger, and housekeeping sends it again. A
    backend that cannot defer gets no retries: they wait in the ledger for
    ``process_attachments`` (check ``attachments.W060``).
    """
    if run_after is not None and not backend().supports_defer:
        return False
    try:
        using(process_attachment, job.queue, job.priority, run_after).enqueue(job.pk)
    except Exception as exc:
        logger.exception("Could not wake a runner for job %s; housekeeping will.", job.pk)
        queue.mark_unsent(job, exc)
        return False
    return True


def arm() -> None:
    """Make sure a housekeeping task is pending while jobs run: one UPDATE, usually of no row."""
    now = timezone.now()
    _set_alarm(now, now)


def _set_alarm(was: datetime, now: datetime) -> None:
    """Move the alarm from at most ``was`` to one interval from ``now``, sending its task."""
    due = now + timedelta(seconds=housekeeping.interval())
    if not backend().supports_defer:
        return
    moved = Alarm.objects.filter(name=Alarm.HOUSEKEEPING, due_at__lte=was).update(due_at=due)
    if not moved:
        # Pending already, or the row does not exist yet: the first one makes it.
        moved = Alarm.objects.get_or_create(name=Alarm.HOUSEKEEPING, defaults={"due_at": due})[1]
    if not moved:
        return
    # First in line where the backend has priorities: behind a backlog it would come late.
    priority = djangotasks.TASK_MAX_PRIORITY if backend().supports_priority else 0
    try:
        using(housekeep, conf.QUEUE, priority, due).enqueue(due.isoformat())
    except Exception:
        # The alarm is set but nothing will ring: once it is overdue, the next
        # runner sets it again.
        logger.exception("Could not send the housekeeping task; a later job will.")


def _not_claimed(job_id: int) -> str:
    job = Job.objects.filter(pk=job_id, failed_at=None, locked_by="").first()
    if job is not None and job.run_at > timezone.now():
        # Woken early (a clock ahead of ours): sleep again until it is due.
        send(job, run_after=job.run_at)
    # Otherwise it runs elsewhere, failed (a retry wakes it), or is done or superseded.
    return "skipped"


def backend() -> Any:
    """The task backend ``ATTACHMENTS["TASKS_BACKEND"]`` names."""
    return djangotasks.task_backends[conf.TASKS_BACKEND]


def using(task: Any, queue_name: str, priority: int, run_after: datetime | None = None) -> Any:
    """``task`` on our backend, in ``queue_name``, with ``priority`` as far as it has them.

    Raises one of ``djangotasks.INVALID_TASK`` where the backend refuses the
    queue or the priority; the system checks ask first, so an upload never does.
    """
    if backend().supports_priority:
        priority = min(max(priority, djangotasks.TASK_MIN_PRIORITY), djangotasks.TASK_MAX_PRIORITY)
    return task.using(
        backend=conf.TASKS_BACKEND, queue_name=queue_name, priority=priority, run_after=run_after
    )
