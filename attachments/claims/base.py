"""What every database's queue SQL shares: putting jobs in, which rows are claimable, loading one.

A job is claimable when it is neither failed nor running and its time has
come; workers take the highest priority first, then the oldest ``run_at``,
then the lowest id. A subclass sends that as its database does best.

Putting jobs in is portable here, through the ORM, in a transaction of its
own or the caller's; a database that can do it in one statement overrides
``enqueue`` and ``enqueue_missing``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from ..models import Job

# Conditions a worker may add (``--queue``, ``--min-priority``, ``--max-priority``).
_CONDITIONS = {"queue": "{} = %s", "min_priority": "{} >= %s", "max_priority": "{} <= %s"}
_COLUMNS = {"queue": "queue", "min_priority": "priority", "max_priority": "priority"}
# The columns a one-statement enqueue writes, in the order of its values.
_INSERTED = (
    "queue",
    "priority",
    "run_at",
    "target",
    "object_id",
    "source",
    "previous",
    "attempts",
    "max_attempts",
    "locked_by",
    "locked_at",
    "failed_at",
    "last_error",
    "created_at",
)


def too_old(
    server: str, version: tuple[int, ...], oldest: tuple[int, ...], needs: str
) -> str | None:
    """Why ``server`` at ``version`` cannot claim, where ``oldest`` has what claims ``needs``."""
    if version >= oldest:
        return None
    running, wanted = (".".join(map(str, v)) for v in (version, oldest))
    return f"it runs {server} {running}; claims need {server} {wanted} or later ({needs})"


@dataclass(frozen=True)
class Claim:
    """What one claim asks for."""

    worker_id: str
    now: datetime
    filters: tuple[str, ...]  # which of _CONDITIONS apply
    values: list[Any]  # theirs, in the same order
    finished: list[int]  # done jobs to delete in the claim's commit


@dataclass(frozen=True)
class Batch:
    """Jobs for records of one field, queued at once (``enqueue_missing``)."""

    target: str
    queue: str
    priority: int
    max_attempts: int
    records: list[tuple[str, str]]  # (object id, source)


def merge_previous(source: str, texts: Sequence[str]) -> str:
    """The versions a job for ``source`` replaces: every name in ``texts``, once, in order.

    ``texts`` are ``Job.previous`` values (one name a line), the new upload's
    first, then those of the older jobs it takes over, newest first.
    """
    names = (name for text in texts for name in text.splitlines())
    return "\n".join(dict.fromkeys(name for name in names if name and name != source))


class Claimer:
    """Put in, claim and delete jobs on one database."""

    def __init__(self, using: str) -> None:
        self.using = using
        qn = connections[using].ops.quote_name
        self.qn = qn
        self.table = qn(Job._meta.db_table)
        self.columns = ", ".join(
            qn(field.column) for field in Job._meta.concrete_fields if field.column
        )

    @functools.cached_property
    def insert_sql(self) -> str:
        """INSERT INTO the job table, naming every column but ``id`` (``_INSERTED``'s order)."""
        columns = ", ".join(self.qn(name) for name in _INSERTED)
        return f"INSERT INTO {self.table} ({columns})"

    @classmethod
    def unsupported(cls, connection: Any) -> str | None:
        """Why the server behind ``connection`` cannot claim, or None."""
        return None

    def enqueue(self, job: Job, *, new_record: bool) -> list[str]:
        """Insert ``job``, replacing the jobs of its record that are not running; wake workers.

        ``job.previous`` (the versions the new upload replaces) gains those the
        replaced and running jobs were to replace; returns the sources of the
        jobs it replaced. ``new_record``: the record has no jobs to look for.
        """
        jobs = Job.objects.using(self.using)
        # No savepoint inside a caller's transaction: if this fails, so does its save.
        with transaction.atomic(using=self.using, savepoint=False):
            older = [] if new_record else list(jobs.for_target(job.target, job.object_id))
            older.sort(key=lambda other: other.pk, reverse=True)
            job.previous = merge_previous(job.source, [job.previous, *(o.previous for o in older)])
            replaced = [other for other in older if not other.locked_by]
            if replaced:
                jobs.filter(pk__in=[other.pk for other in replaced], locked_by="").delete()
            job.save(using=self.using, force_insert=True)
        return [other.source for other in replaced]

    def enqueue_missing(self, batch: Batch) -> int:
        """Insert a job for each record of ``batch`` that has none yet; return how many.

        One commit (its own, or the caller's); workers are woken once.
        """
        rows = Job.objects.using(self.using)
        with transaction.atomic(using=self.using, savepoint=False):
            busy = set(
                rows.filter(
                    target=batch.target, object_id__in=[pk for pk, _ in batch.records]
                ).values_list("object_id", flat=True)
            )
            now = timezone.now()
            missing = [
                Job(
                    target=batch.target,
                    object_id=object_id,
                    source=source,
                    queue=batch.queue,
                    priority=batch.priority,
                    max_attempts=batch.max_attempts,
                    run_at=now,
                )
                for object_id, source in batch.records
                if object_id not in busy
            ]
            rows.bulk_create(missing)
        return len(missing)

    def claim(
        self,
        worker_id: str,
        queue_name: str | None,
        min_priority: int | None,
        max_priority: int | None,
        finished: Collection[int],
    ) -> Job | None:
        """Lock the next due job of ``queue_name`` (None: any) for ``worker_id``.

        ``finished`` are deleted in the same commit, whether a job is found or not.
        """
        values = {"queue": queue_name, "min_priority": min_priority, "max_priority": max_priority}
        filters = tuple(name for name, value in values.items() if value is not None)
        selected = [values[name] for name in filters]
        return self.claim_job(Claim(worker_id, timezone.now(), filters, selected, list(finished)))

    def claim_job(self, claim: Claim) -> Job | None:
        """Claim as this database does best."""
        raise NotImplementedError

    def complete(self, worker_id: str, job_ids: Collection[int]) -> None:
        """Delete jobs ``worker_id`` has done and still holds."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.delete_sql(len(job_ids)), [*job_ids, worker_id])

    def holds(self, job: Job) -> bool:
        """Whether ``job`` is still locked by the worker that claimed it; locks its row."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.holds_sql, [job.pk, job.locked_by])
            return cursor.fetchone() is not None

    @functools.cached_property
    def holds_sql(self) -> str:
        # Raw, as the claim: the ORM spent ten times the statement's own time building it.
        qn = self.qn
        lock = " FOR UPDATE" if connections[self.using].features.has_select_for_update else ""
        return f"SELECT 1 FROM {self.table} WHERE {qn('id')} = %s AND {qn('locked_by')} = %s{lock}"

    def delete_finished(self, cursor: Any, claim: Claim) -> None:
        """Delete the claim's finished jobs on ``cursor``, in the claim's transaction."""
        cursor.execute(self.delete_sql(len(claim.finished)), [*claim.finished, claim.worker_id])

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def delete_sql(self, count: int) -> str:
        """Delete ``count`` jobs by id (parameters: the ids, then the worker's id).

        One plain statement: QuerySet.delete() would wrap it in a transaction of
        its own (three round trips, an extra disk sync). Job has no relations and
        no delete signals to honour. Only rows still locked by the worker: a job
        taken over after a lost heartbeat is not ours to delete.
        """
        qn = self.qn
        placeholders = ", ".join(["%s"] * count)
        return (
            f"DELETE FROM {self.table} "
            f"WHERE {qn('id')} IN ({placeholders}) AND {qn('locked_by')} = %s"
        )

    def next_due_sql(self, filters: tuple[str, ...], *, columns: str, lock: str = "") -> str:
        """SELECT ``columns`` of the next claimable row (parameters: now, then ``filters``)."""
        qn = self.qn
        where = [f"{qn('failed_at')} IS NULL", f"{qn('locked_by')} = ''", f"{qn('run_at')} <= %s"]
        where += [_CONDITIONS[name].format(qn(_COLUMNS[name])) for name in filters]
        return (
            f"SELECT {columns} FROM {self.table} WHERE {' AND '.join(where)} "
            f"ORDER BY {qn('priority')} DESC, {qn('run_at')}, {qn('id')} LIMIT 1{lock}"
        )

    def update_returning_sql(
        self, filters: tuple[str, ...], *, lock: str = "", prefix: str = "", extra: str = ""
    ) -> str:
        """One statement that claims: UPDATE the next claimable row, RETURNING it.

        Parameters: the worker's id, now (the lock's time), now (what is due),
        then ``filters``. The inner SELECT finds the row (through a partial
        index), the UPDATE locks it; ``prefix`` goes before the UPDATE,
        ``extra`` after its WHERE.
        """
        qn = self.qn
        inner = self.next_due_sql(filters, columns=qn("id"), lock=lock)
        return (
            f"{prefix}UPDATE {self.table} SET {qn('locked_by')} = %s, {qn('locked_at')} = %s "
            f"WHERE {qn('id')} = ({inner}){extra} RETURNING {self.columns}"
        )

    def adapt(self, now: datetime) -> Any:
        return connections[self.using].ops.adapt_datetimefield_value(now)

    def load(self, row: Sequence[Any]) -> Job:
        """Turn a row of ``Job``'s columns into a Job, as a query would."""
        connection = connections[self.using]
        loaded = list(row)
        for index, field, converter in self._converters:
            loaded[index] = converter(loaded[index], field, connection)
        return Job.from_db(self.using, self._attnames, loaded)

    @functools.cached_property
    def _attnames(self) -> list[str]:
        return [field.attname for field in Job._meta.concrete_fields]

    @functools.cached_property
    def _converters(self) -> list[tuple[int, Any, Any]]:
        connection = connections[self.using]
        return [
            (index, field, converter)
            for index, field in enumerate(Job._meta.concrete_fields)
            for converter in connection.ops.get_db_converters(field.get_col(Job._meta.db_table))
        ]
