"""Run a hot statement as a prepared statement on PostgreSQL.

A worker sends the same claim statement for every job, and PostgreSQL spent a
third of each claim planning it anew: Django leaves prepared statements off,
since a transaction-mode pooler (PgBouncer's ``pool_mode=transaction``) may run
each statement on a different server connection. Here a statement is prepared
once per connection (SQL ``PREPARE``, named after its text, so one name always
means one statement) and then run with ``EXECUTE``, through Django's cursor
like any other query.

Statements can vanish behind a connection's back (``DISCARD ALL``, a pooler
handing it another server session): then it is prepared again, once. When a
statement is gone right after it was prepared, prepared statements cannot last
on that connection: it falls back to plain statements, with a warning, for the
rest of the connection's life. ``ATTACHMENTS['PREPARED_STATEMENTS'] = False``
turns all of it off.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from django.db import ProgrammingError

from ..conf import conf

logger = logging.getLogger("attachments")

_MISSING = "26000"  # invalid_sql_statement_name: no such prepared statement
_EXISTS = "42P05"  # duplicate_prepared_statement

# Per DB-API connection: names prepared on it, or None once they proved not to
# last. Weak keys: a closed connection's entry goes with it, and a reconnect
# starts afresh.
_prepared: weakref.WeakKeyDictionary[Any, set[str] | None] = weakref.WeakKeyDictionary()


def execute(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """Execute ``sql`` on Django's PostgreSQL ``cursor``, as a prepared statement.

    ``sql`` takes its parameters as ``%s`` and holds no literal ``%``. Plain
    inside a transaction: a failed EXECUTE would abort the caller's work.
    """
    connection = cursor.db
    if not connection.get_autocommit() or not conf.PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    known = _prepared.setdefault(connection.connection, set())
    if known is None:
        cursor.execute(sql, params)
        return
    digest = hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()
    name = f"attachments_{digest[:20]}"
    run = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
    while True:
        fresh = name not in known
        if fresh:
            _prepare(cursor, name, sql)
            known.add(name)
        try:
            cursor.execute(run, params)
            return
        except ProgrammingError as error:
            if _sqlstate(error) != _MISSING:
                raise
            known.discard(name)
            if fresh:
                break
    _prepared[connection.connection] = None
    logger.warning(
        "Prepared statements do not last on database %r (a transaction-mode pooler?): "
        "running plain statements on this connection. Set "
        "ATTACHMENTS['PREPARED_STATEMENTS'] = False to skip trying.",
        connection.alias,
    )
    cursor.execute(sql, params)


def _prepare(cursor: Any, name: str, sql: str) -> None:
    parts = sql.split("%s")
    body = "".join(f"{part}${number}" for number, part in enumerate(parts[:-1], 1)) + parts[-1]
    try:
        cursor.execute(f"PREPARE {name} AS {body}")
    except ProgrammingError as error:
        # Already there: prepared by this session before we could note it (a
        # pooler handed us a server session that had it). Same name, same text.
        if _sqlstate(error) != _EXISTS:
            raise


def _sqlstate(error: BaseException) -> str | None:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
