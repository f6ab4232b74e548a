from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.db import DataError, connection, transaction

from attachments import queue
from attachments.claims import prepared
from attachments.models import Job

# Prepared statements are for autocommit only: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


@pytest.fixture
def sent() -> Iterator[list[str]]:
    """The statements sent through Django's connection, first word upper-cased."""
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements
    # A test may leave the connection without prepared statements: start afresh.
    connection.close()


def kinds(statements: list[str]) -> list[str]:
    return [sql.split(None, 1)[0].upper() for sql in statements]


def add(object_id: int) -> Job:
    return queue.enqueue(target="demo_site.item.image", object_id=object_id, source="s.jpg").job


def server_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return [name for (name,) in cursor.fetchall()]


@postgres_only
def test_enqueues_and_claims_are_prepared_once_per_connection_then_executed(sent):
    jobs = [add(i) for i in range(3)]
    assert kinds(sent) == ["PREPARE", "EXECUTE", "EXECUTE", "EXECUTE"]
    sent.clear()
    claimed = [queue.claim("w") for _ in jobs]
    assert claimed == jobs
    assert kinds(sent) == ["PREPARE", "EXECUTE", "EXECUTE", "EXECUTE"]
    assert len([n for n in server_statements() if n.startswith("attachments_")]) == 2


@postgres_only
def test_an_enqueue_of_a_new_record_is_a_statement_of_its_own(sent):
    queue.enqueue(target="demo_site.item.image", object_id=1, source="a.jpg", new_record=True)
    add(2)
    queue.enqueue(target="demo_site.item.image", object_id=3, source="c.jpg", new_record=True)
    assert kinds(sent) == ["PREPARE", "EXECUTE", "PREPARE", "EXECUTE", "EXECUTE"]


@postgres_only
def test_a_statement_dropped_behind_its_back_is_prepared_again(sent, caplog):
    first, second = add(1), add(2)
    assert queue.claim("w") == first
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset (DISCARD ALL) also does
    sent.clear()
    with caplog.at_level(logging.WARNING, logger="attachments"):
        assert queue.claim("w") == second
    assert kinds(sent) == ["EXECUTE", "PREPARE", "EXECUTE"]
    assert caplog.records == []


@postgres_only
def test_a_statement_the_session_already_has_is_used(sent):
    first, second = add(1), add(2)
    assert queue.claim("w") == first
    prepared._prepared.clear()  # as if a pooler handed over a session that had it
    sent.clear()
    assert queue.claim("w") == second
    assert kinds(sent) == ["PREPARE", "EXECUTE"]


@postgres_only
def test_where_statements_do_not_last_claims_fall_back_to_plain_ones(sent, caplog):
    # A transaction-mode pooler runs each statement on any server session:
    # what one statement prepared is gone by the next.
    def forget(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("PREPARE"):
            execute("DEALLOCATE ALL", None, False, context)
        return result

    jobs = [add(i) for i in range(3)]
    sent.clear()
    with connection.execute_wrapper(forget), caplog.at_level(logging.WARNING):
        claimed = [queue.claim("w") for _ in jobs]
    assert claimed == jobs
    assert kinds(sent) == ["PREPARE", "EXECUTE", "UPDATE", "UPDATE", "UPDATE"]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "Prepared statements do not last on database 'default' (a transaction-mode pooler?)"
    ]


@postgres_only
def test_other_errors_reach_the_caller(sent):
    with pytest.raises(DataError), connection.cursor() as cursor:
        prepared.execute(cursor, "SELECT 1 / %s", [0])
    with connection.cursor() as cursor:
        prepared.execute(cursor, "SELECT 1 / %s", [1])  # still prepared, still works
        assert cursor.fetchone() == (1,)
    assert kinds(sent) == ["PREPARE", "EXECUTE", "EXECUTE"]


def test_inside_a_transaction_the_enqueue_is_plain(sent):
    with transaction.atomic():
        job = add(1)
    assert {"PREPARE", "EXECUTE"}.isdisjoint(kinds(sent))
    assert Job.objects.get() == job


def test_inside_a_transaction_the_claim_is_plain(sent):
    job = add(1)
    sent.clear()
    with transaction.atomic():
        assert queue.claim("w") == job
    assert "PREPARE" not in kinds(sent)
    assert "EXECUTE" not in kinds(sent)


@postgres_only
def test_the_setting_turns_prepared_statements_off(sent, settings):
    settings.ATTACHMENTS = {"PREPARED_STATEMENTS": False}
    job = add(1)
    sent.clear()
    assert queue.claim("w") == job
    assert kinds(sent) == ["UPDATE"]


def test_other_databases_run_the_claim_as_it_is(sent):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL prepares it")
    job = add(1)
    sent.clear()
    assert queue.claim("w") == job
    assert {"PREPARE", "EXECUTE"}.isdisjoint(kinds(sent))
