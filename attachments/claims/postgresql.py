"""The queue on PostgreSQL: each enqueue and each claim one statement, prepared.

One statement, so an enqueue or a claim is one round trip and atomic on its
own (in autocommit; in a caller's transaction it commits with the caller's
work). A claim's SKIP LOCKED lets concurrent workers pass over each other's
rows instead of queueing behind them; with finished jobs, a data-modifying
WITH deletes them first, and runs once whatever the UPDATE finds. An enqueue
deletes the record's waiting jobs, inserts the new one with the versions they
were to replace, and sends the NOTIFY that wakes workers on commit, all in
data-modifying WITHs of one statement; a bulk enqueue inserts a batch from
arrays (``unnest``) with one NOTIFY.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections

from ..models import Job
from . import prepared
from .base import Batch, Claim, Claimer

# The channel workers LISTEN on (wakeup.py); the payload is the job's queue.
CHANNEL = "attachments_job"

# The versions a new job replaces: its own (a parameter), then those of the
# record's older jobs, newest first; each name once, in that order, never the
# new source. Split, numbered, grouped by name, joined back in order.
_PREVIOUS = """(SELECT coalesce(string_agg(name, E'\\n' ORDER BY first), '') FROM (
    SELECT name, min(position) AS first
    FROM unnest(string_to_array(concat_ws(E'\\n', %s::text,
        (SELECT string_agg(previous, E'\\n' ORDER BY id DESC) FROM older)), E'\\n'))
        WITH ORDINALITY AS names(name, position)
    WHERE name <> '' AND name <> %s::text
    GROUP BY name) AS names)"""

# The claim's commit need not wait for the disk (a WAL flush, a fifth of a
# claim's time): if a server crash loses it, a claim or a deletion of a done
# job is undone and the job runs again, finding it done. What a job changes on
# its record still commits synchronously, which also flushes every commit
# before it, so nothing is lost out of order. The setting is
# transaction-local; the planner evaluates it once, as a one-time filter.
_ASYNCHRONOUS = " AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL"


class PostgreSQLClaimer(Claimer):
    def claim_job(self, claim: Claim) -> Job | None:
        connection = connections[self.using]
        # Relaxed only in autocommit: inside a caller's transaction it would relax their commit.
        relaxed = not connection.in_atomic_block
        stamp = self.adapt(claim.now)
        deleting = [*claim.finished, claim.worker_id] if claim.finished else []
        params = [*deleting, claim.worker_id, stamp, stamp, *claim.values]
        with connection.cursor() as cursor:
            sql = self.claim_sql(claim.filters, relaxed, len(claim.finished))
            prepared.execute(cursor, sql, params)
            row = cursor.fetchone()
        return None if row is None else self.load(row)

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def claim_sql(self, filters: tuple[str, ...], relaxed: bool, finishing: int) -> str:
        """The claim, deleting ``finishing`` done jobs first (their parameters come first)."""
        prefix = f"WITH finished AS ({self.delete_sql(finishing)}) " if finishing else ""
        return self.update_returning_sql(
            filters,
            lock=" FOR UPDATE SKIP LOCKED",
            prefix=prefix,
            extra=_ASYNCHRONOUS if relaxed else "",
        )

    def enqueue(self, job: Job, *, new_record: bool) -> list[str]:
        now = self.adapt(job.run_at)
        job.created_at = job.run_at
        values = [job.queue, job.priority, now, job.target, job.object_id, job.source]
        if new_record:
            values.append(job.previous)
        else:
            values += [job.previous, job.source]
        params = [*values, job.max_attempts, now, CHANNEL, job.queue]
        if not new_record:
            params = [job.target, job.object_id, *params]
        # Its commit waits for the disk like any other: an upload's save commits
        # the record and its job together (versions.commit_once).
        with connections[self.using].cursor() as cursor:
            prepared.execute(cursor, self.enqueue_sql(new_record), params)
            job.pk, job.previous, replaced = cursor.fetchone()[:3]
        job._state.adding, job._state.db = False, self.using
        return list(replaced)

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def enqueue_sql(self, new_record: bool) -> str:
        """Insert a job and NOTIFY; unless ``new_record``, replace the record's waiting jobs.

        The older jobs are read once (``older``); those not running are
        deleted unless a claim took them meanwhile (the DELETE waits for the
        claim's row lock and sees it committed), and only those are returned.
        """
        qn, table = self.qn, self.table
        previous = "%s::text" if new_record else _PREVIOUS
        replacing = (
            f"WITH older AS (SELECT {qn('id')}, {qn('locked_by')}, {qn('previous')} "
            f"FROM {table} WHERE {qn('target')} = %s AND {qn('object_id')} = %s), "
            f"replaced AS (DELETE FROM {table} WHERE {qn('id')} IN "
            f"(SELECT {qn('id')} FROM older WHERE {qn('locked_by')} = '') "
            f"AND {qn('locked_by')} = '' RETURNING {qn('source')}), "
        )
        return (
            f"{'WITH ' if new_record else replacing}"
            f"job AS ({self.insert_sql} VALUES (%s, %s::integer, %s::timestamptz, %s, %s, %s, "
            f"{previous}, 0, %s::integer, '', NULL, NULL, '', %s::timestamptz) "
            f"RETURNING {qn('id')}, {qn('previous')}) "
            f"SELECT job.{qn('id')}, job.{qn('previous')}, "
            + ("ARRAY[]::text[]" if new_record else "ARRAY(SELECT source FROM replaced)")
            + ", pg_notify(%s, %s)::text FROM job"
        )

    def enqueue_missing(self, batch: Batch) -> int:
        if not batch.records:
            return 0
        ids, sources = (list(column) for column in zip(*batch.records, strict=True))
        now = self.adapt(Job().run_at)
        params: list[Any] = [batch.queue, batch.priority, now, batch.target, batch.max_attempts]
        params += [now, ids, sources, batch.target, CHANNEL, batch.queue]
        # A plain statement: planning is nothing next to a batch, and an
        # array's length would make each size a prepared statement of its own.
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.enqueue_missing_sql, params)
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    @functools.cached_property
    def enqueue_missing_sql(self) -> str:
        """Insert the batch's records that have no job (from two arrays); NOTIFY if any."""
        qn, table = self.qn, self.table
        return (
            f"WITH job AS ({self.insert_sql} "
            f"SELECT %s, %s::integer, %s::timestamptz, %s, new.object_id, new.source, '', 0, "
            f"%s::integer, '', NULL, NULL, '', %s::timestamptz "
            f"FROM unnest(%s::text[], %s::text[]) AS new(object_id, source) "
            # One index probe per record (LATERAL ... LIMIT 1): as NOT EXISTS, the
            # planner may hash every job of the target, a cost that grows with the table.
            f"LEFT JOIN LATERAL (SELECT 1 AS found FROM {table} WHERE {qn('target')} = %s "
            f"AND {qn('object_id')} = new.object_id LIMIT 1) AS queued ON true "
            f"WHERE queued.found IS NULL RETURNING 1) "
            f"SELECT inserted, pg_notify(%s, %s)::text "
            f"FROM (SELECT count(*) AS inserted FROM job) AS counted WHERE inserted > 0"
        )


claimer = PostgreSQLClaimer
