"""Put jobs in the table and take them out again.

Every transition is one conditional UPDATE on the job row, so two workers can
never both own a job, and a worker that lost its lock cannot overwrite a job
that was handed to somebody else.
"""

from __future__ import annotations

import functools
import random
import traceback
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from . import prepared
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
    # No savepoint inside a caller's transaction: if this fails, so does its save.
    with transaction.atomic(using=router.db_for_write(Job), savepoint=False):
        older = (
            [] if new_record else list(Job.objects.for_target(target, object_id).order_by("-id"))
        )
        names = [*previous, *(name for job in older for name in job.previous_names)]
        replaced = [job for job in older if not job.locked_by]
        if replaced:
            Job.objects.filter(pk__in=[job.pk for job in replaced], locked_by="").delete()
        job = Job.objects.create(
            target=target,
            object_id=str(object_id),
            source=source,
            previous="\n".join(dict.fromkeys(name for name in names if name != source)),
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
        )
        notify(queue)
    return Enqueued(job, tuple(j.source for j in replaced if j.source != source))


CHANNEL = "attachments_job"


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
    for name in queues or (None,):
        job = _claim_one(worker_id, name, min_priority, max_priority, finished)
        finished = ()
        if job is not None:
            return job
    return None


def _claim_one(
    worker_id: str,
    queue_name: str | None,
    min_priority: int | None,
    max_priority: int | None,
    finished: Collection[int],
) -> Job | None:
    using = router.db_for_write(Job)
    connection = connections[using]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values = {"queue": queue_name, "min_priority": min_priority, "max_priority": max_priority}
    filters = tuple(name for name, value in values.items() if value is not None)
    # Relaxed only in autocommit: inside a caller's transaction it would relax their commit.
    relaxed = connection.vendor == "postgresql" and not connection.in_atomic_block
    params: list[Any] = [worker_id, now, now, *(values[name] for name in filters)]
    deleting: list[Any] = [*finished, worker_id] if finished else []
    if finished and connection.vendor != "postgresql":
        # No data-modifying WITH here: the DELETE and the claim share a transaction.
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            cursor.execute(_delete_sql(using, len(finished)), deleting)
            cursor.execute(_claim_sql(using, filters, relaxed, 0), params)
            row = cursor.fetchone()
    else:
        with connection.cursor() as cursor:
            sql = _claim_sql(using, filters, relaxed, len(finished))
            prepared.execute(cursor, sql, deleting + params)
            row = cursor.fetchone()
    if row is None:
        return None
    attnames, converters = _loaders(using)
    loaded = list(row)
    for index, field, converter in converters:
        loaded[index] = converter(loaded[index], field, connection)
    return Job.from_db(using, attnames, loaded)


@functools.lru_cache(maxsize=16)
def _loaders(using: str) -> tuple[list[str], list[tuple[int, Any, Any]]]:
    """What turns a row the claim returns into a Job: attnames, (column, field, converter)s."""
    connection = connections[using]
    fields = Job._meta.concrete_fields
    converters = [
        (index, field, converter)
        for index, field in enumerate(fields)
        for converter in connection.ops.get_db_converters(field.get_col(Job._meta.db_table))
    ]
    return [field.attname for field in fields], converters


_CONDITIONS = {"queue": "{} = %s", "min_priority": "{} >= %s", "max_priority": "{} <= %s"}


@functools.lru_cache(maxsize=64)
def _claim_sql(using: str, filters: tuple[str, ...], relaxed: bool, finishing: int) -> str:
    """The claim statement, built once per database, set of ``filters`` and the rest.

    With ``finishing`` (PostgreSQL only) it first deletes that many done jobs,
    in a data-modifying WITH, which runs once whatever the UPDATE finds: still
    one statement. Its parameters then come first.

    One statement, so a claim is one round trip and atomic on its own: the
    inner SELECT finds the next claimable row (through a partial index), the
    UPDATE locks it. PostgreSQL's SKIP LOCKED lets concurrent workers pass over
    each other's rows instead of queueing behind them; SQLite runs one writer at
    a time, which makes the statement exclusive anyway.
    """
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(Job._meta.db_table)
    where = [f"{qn('failed_at')} IS NULL", f"{qn('locked_by')} = ''", f"{qn('run_at')} <= %s"]
    column = {"queue": qn("queue"), "min_priority": qn("priority"), "max_priority": qn("priority")}
    where += [_CONDITIONS[name].format(column[name]) for name in filters]
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    # The claim's commit need not wait for the disk (a WAL flush, a fifth of a
    # claim's time): if a server crash loses it, a claim or a deletion of a
    # done job is undone and the job runs again, finding it done. What a job
    # changes on its record still commits synchronously, which also flushes
    # every commit before it, so nothing is lost out of order. The setting is
    # transaction-local; the planner evaluates it once, as a one-time filter.
    asynchronous = (
        " AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL" if relaxed else ""
    )
    returning = ", ".join(qn(field.column) for field in Job._meta.concrete_fields if field.column)
    finished = f"WITH finished AS ({_delete_sql(using, finishing)}) " if finishing else ""
    return (
        f"{finished}UPDATE {table} SET {qn('locked_by')} = %s, {qn('locked_at')} = %s "
        f"WHERE {qn('id')} = (SELECT {qn('id')} FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY {qn('priority')} DESC, {qn('run_at')}, {qn('id')} LIMIT 1{lock}){asynchronous} "
        f"RETURNING {returning}"
    )


def complete(worker_id: str, job_ids: Collection[int]) -> None:
    """Delete jobs that ``worker_id`` has done; a busy worker passes them to ``claim``."""
    using = router.db_for_write(Job)
    with connections[using].cursor() as cursor:
        cursor.execute(_delete_sql(using, len(job_ids)), [*job_ids, worker_id])


@functools.lru_cache(maxsize=64)
def _delete_sql(using: str, count: int) -> str:
    """Delete ``count`` jobs by id (parameters: the ids, then the worker's id).

    One plain statement: QuerySet.delete() would wrap it in a transaction of
    its own (three round trips, an extra disk sync). Job has no relations and
    no delete signals to honour. Only rows still locked by the worker: a job
    taken over after a lost heartbeat is not ours to delete.
    """
    qn = connections[using].ops.quote_name
    placeholders = ", ".join(["%s"] * count)
    return (
        f"DELETE FROM {qn(Job._meta.db_table)} "
        f"WHERE {qn('id')} IN ({placeholders}) AND {qn('locked_by')} = %s"
    )


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
