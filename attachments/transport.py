"""How a runner is woken for a job, whatever runs it.

Our worker hears ``queue.notify`` (PostgreSQL's NOTIFY, sent inside the
transaction that queues the job) or polls. With ``BACKEND="tasks"`` a task
backend's worker is the runner, woken by a task that carries the job's id,
sent once the job is committed (a task sent earlier could find no job).
"""

from __future__ import annotations

from django.db import router, transaction

from .conf import conf
from .models import Job


def wake(job: Job, *, using: str | None = None) -> None:
    """Wake a runner for ``job`` when the current transaction commits (now, outside one)."""
    if conf.BACKEND != "tasks":
        return
    from . import tasks  # the Tasks framework is imported only by projects that use it

    transaction.on_commit(lambda: tasks.send(job), using=using or router.db_for_write(Job))
