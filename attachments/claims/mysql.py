"""The claim on MySQL 8 and MariaDB 10.6+: SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE.

Neither has UPDATE ... RETURNING, and neither lets an UPDATE's subquery read
the table it updates, so a claim is a short transaction: delete the finished
jobs, lock the next claimable row (SKIP LOCKED passes over rows other workers
are claiming, as on PostgreSQL), mark it as ours, commit. Neither has partial
indexes either: migration 0004 gives MySQL its own claim indexes, led by the
columns that say a row is claimable, so the SELECT reads them in claim order
and stops at the first row it can lock.

Claims rely on Django's default isolation level, READ COMMITTED: under
REPEATABLE READ a locking read also locks the gaps it scans, which makes
enqueues wait for claims.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, transaction

from ..models import Job
from .base import Claim, Claimer, too_old

# SKIP LOCKED: MySQL 8.0.1, MariaDB 10.6.
OLDEST = {False: ("MySQL", (8, 0, 1)), True: ("MariaDB", (10, 6))}


class MySQLClaimer(Claimer):
    @classmethod
    def unsupported(cls, connection: Any) -> str | None:
        server, oldest = OLDEST[connection.mysql_is_mariadb]
        return too_old(
            server, connection.mysql_version, oldest, "SELECT ... FOR UPDATE SKIP LOCKED"
        )

    def claim_job(self, claim: Claim) -> Job | None:
        stamp = self.adapt(claim.now)
        with (
            transaction.atomic(using=self.using, savepoint=False),
            connections[self.using].cursor() as cursor,
        ):
            if claim.finished:
                self.delete_finished(cursor, claim)
            cursor.execute(self.select_sql(claim.filters), [stamp, *claim.values])
            row = cursor.fetchone()
            if row is None:
                return None
            job = self.load(row)
            cursor.execute(self.lock_sql, [claim.worker_id, stamp, job.pk])
        job.locked_by, job.locked_at = claim.worker_id, claim.now
        return job

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def select_sql(self, filters: tuple[str, ...]) -> str:
        return self.next_due_sql(filters, columns=self.columns, lock=" FOR UPDATE SKIP LOCKED")

    @functools.cached_property
    def lock_sql(self) -> str:
        qn = self.qn
        return (
            f"UPDATE {self.table} SET {qn('locked_by')} = %s, {qn('locked_at')} = %s "
            f"WHERE {qn('id')} = %s"
        )


claimer = MySQLClaimer
