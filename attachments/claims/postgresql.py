"""The claim on PostgreSQL: one prepared statement, deleting finished jobs in a WITH.

One statement, so a claim is one round trip and atomic on its own. SKIP
LOCKED lets concurrent workers pass over each other's rows instead of
queueing behind them. With finished jobs, a data-modifying WITH deletes them
first; it runs once whatever the UPDATE finds.
"""

from __future__ import annotations

import functools

from django.db import connections

from ..models import Job
from . import prepared
from .base import Claim, Claimer

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


claimer = PostgreSQLClaimer
