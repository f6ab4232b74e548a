"""The claim on SQLite: one UPDATE ... RETURNING.

SQLite runs one writer at a time, which makes the statement exclusive without
any row lock. Deleting finished jobs needs a statement of its own, so then
both share one transaction.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime
from typing import Any

from django.db import connections, transaction

from ..models import Job
from .base import Claimer

# UPDATE ... RETURNING.
OLDEST = (3, 35)


class SQLiteClaimer(Claimer):
    @classmethod
    def unsupported(cls, connection: Any) -> str | None:
        version = connection.Database.sqlite_version_info
        if version >= OLDEST:
            return None
        return (
            f"it runs SQLite {'.'.join(map(str, version))}; claims need SQLite 3.35 or later "
            "(UPDATE ... RETURNING)"
        )

    def claim_job(
        self,
        worker_id: str,
        now: datetime,
        filters: tuple[str, ...],
        values: list[Any],
        finished: list[int],
    ) -> Job | None:
        stamp = self.adapt(now)
        together = (
            transaction.atomic(using=self.using, savepoint=False)
            if finished
            else contextlib.nullcontext()
        )
        with together, connections[self.using].cursor() as cursor:
            if finished:
                cursor.execute(self.delete_sql(len(finished)), [*finished, worker_id])
            cursor.execute(self.claim_sql(filters), [worker_id, stamp, stamp, *values])
            row = cursor.fetchone()
        return None if row is None else self.load(row)

    @functools.cache  # noqa: B019 -- one claimer per database, for the process's life
    def claim_sql(self, filters: tuple[str, ...]) -> str:
        return self.update_returning_sql(filters)


claimer = SQLiteClaimer
