"""The queue on SQLite: a claim is one UPDATE ... RETURNING, an enqueue one INSERT ... RETURNING.

SQLite runs one writer at a time, which makes the statement exclusive without
any row lock. Deleting finished jobs needs a statement of its own, so then
both share one transaction.

An enqueue is plain SQL through Django's cursor (its execute wrappers and
query log still see it): the ORM's save costs four times the statement
itself, seven times when it replaces jobs. A new record's job is one
INSERT; replacing a record's jobs reads them, deletes the waiting ones and
inserts, in one transaction.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from django.db import connections, transaction

from ..models import Job
from .base import Claim, Claimer, merge_previous, too_old

# UPDATE ... RETURNING (Django itself needs 3.37 or later).
OLDEST = (3, 35)


class SQLiteClaimer(Claimer):
    @classmethod
    def unsupported(cls, connection: Any) -> str | None:
        version = connection.Database.sqlite_version_info
        return too_old("SQLite", version, OLDEST, "UPDATE ... RETURNING")

    def claim_job(self, claim: Claim) -> Job | None:
        stamp = self.adapt(claim.now)
        together = (
            transaction.atomic(using=self.using, savepoint=False)
            if claim.finished
            else contextlib.nullcontext()
        )
        with together, connections[self.using].cursor() as cursor:
            if claim.finished:
                self.delete_finished(cursor, claim)
            params = [claim.worker_id, stamp, stamp, *claim.values]
            cursor.execute(self.claim_sql(claim.filters), params)
            row = cursor.fetchone()
        return None if row is None else self.load(row)

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def claim_sql(self, filters: tuple[str, ...]) -> str:
        return self.update_returning_sql(filters)

    def enqueue(self, job: Job, *, new_record: bool) -> list[str]:
        connection = connections[self.using]
        replacing = (
            contextlib.nullcontext()
            if new_record
            # No savepoint inside a caller's transaction: if this fails, so does its save.
            else transaction.atomic(using=self.using, savepoint=False)
        )
        replaced: list[str] = []
        with replacing, connection.cursor() as cursor:
            if not new_record:
                replaced = self.replace_older(cursor, job)
            now = self.adapt(job.run_at)
            job.created_at = job.run_at
            row = [job.queue, job.priority, now, job.target, job.object_id, job.source]
            cursor.execute(self.enqueue_sql, [*row, job.previous, job.max_attempts, now])
            job.pk = cursor.fetchone()[0]
        job._state.adding, job._state.db = False, self.using
        return replaced

    def replace_older(self, cursor: Any, job: Job) -> list[str]:
        """Delete the record's waiting jobs; merge every older job's versions into ``job``'s.

        As the portable path: older jobs newest first, running ones kept but
        their versions carried over; returns the sources of the jobs deleted.
        """
        qn = self.qn
        cursor.execute(
            f"SELECT {qn('id')}, {qn('locked_by')}, {qn('previous')} FROM {self.table} "
            f"WHERE {qn('target')} = %s AND {qn('object_id')} = %s ORDER BY {qn('id')} DESC",
            [job.target, job.object_id],
        )
        older = cursor.fetchall()
        job.previous = merge_previous(job.source, [job.previous, *(row[2] for row in older)])
        waiting = [row[0] for row in older if not row[1]]
        if not waiting:
            return []
        # The jobs no worker holds ("" for a worker's id), unless one was claimed meanwhile.
        returning = f" RETURNING {qn('id')}, {qn('source')}"
        cursor.execute(self.delete_sql(len(waiting)) + returning, [*waiting, ""])
        deleted = dict(cursor.fetchall())
        return [deleted[pk] for pk in waiting if pk in deleted]

    @functools.cached_property
    def enqueue_sql(self) -> str:
        return (
            f"{self.insert_sql} VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, '', NULL, NULL, '', %s) "
            f"RETURNING {self.qn('id')}"
        )


claimer = SQLiteClaimer
