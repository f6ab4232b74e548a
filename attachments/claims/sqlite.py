"""The claim on SQLite: one UPDATE ... RETURNING.

SQLite runs one writer at a time, which makes the statement exclusive without
any row lock. Deleting finished jobs needs a statement of its own, so then
both share one transaction.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from django.db import connections, transaction

from ..models import Job
from .base import Claim, Claimer, too_old

# UPDATE ... RETURNING.
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


claimer = SQLiteClaimer
