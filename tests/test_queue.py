from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attachments import claims, queue
from attachments.models import Job

pytestmark = pytest.mark.django_db


def add(object_id: object = 1, source: str = "s.jpg", **kwargs) -> Job:
    return queue.enqueue(
        target="demo_site.item.image", object_id=object_id, source=source, **kwargs
    ).job


def test_enqueue_replaces_waiting_jobs_of_the_same_record():
    first = add(source="a.jpg", previous=["old.jpg"])
    other = add(object_id=2, source="z.jpg")
    result = queue.enqueue(
        target="demo_site.item.image", object_id=1, source="b.jpg", previous=["a.jpg"]
    )
    assert set(Job.objects.values_list("source", flat=True)) == {"b.jpg", "z.jpg"}
    assert result.superseded_sources == ("a.jpg",)
    # The version the first upload was replacing still goes once b is ready; so
    # does a itself, in case its job published it before b's upload landed.
    assert result.job.previous_names == ["a.jpg", "old.jpg"]
    assert not Job.objects.filter(pk=first.pk).exists()
    assert Job.objects.filter(pk=other.pk).exists()


def test_enqueue_leaves_a_running_job_alone():
    running = add(source="a.jpg", previous=["old.jpg"])
    assert queue.claim("w1") == running
    result = queue.enqueue(target="demo_site.item.image", object_id=1, source="b.jpg")
    assert Job.objects.count() == 2
    assert result.superseded_sources == ()
    assert result.job.previous_names == ["old.jpg"]


def test_enqueue_carries_every_older_version_over_once_newest_first():
    running = add(source="a.jpg", previous=["v1.jpg", "v0.jpg"])
    assert queue.claim("w1") == running
    waiting = add(source="b.jpg", previous=["a.jpg", "v1.jpg"])
    failed = add(source="c.jpg", previous=["b.jpg", "x.jpg"])
    queue.fail(queue.claim("w2"), ValueError("bad"), permanent=True)
    result = queue.enqueue(
        target="demo_site.item.image",
        object_id=1,
        source="d.jpg",
        previous=["c.jpg", "c.jpg", "d.jpg"],
    )
    # The new upload's own versions first, then the older jobs', newest job
    # first; never the new source itself.
    assert result.job.previous_names == ["c.jpg", "b.jpg", "x.jpg", "a.jpg", "v1.jpg", "v0.jpg"]
    assert result.superseded_sources == ("c.jpg",)
    assert set(Job.objects.values_list("source", flat=True)) == {"a.jpg", "d.jpg"}
    assert not Job.objects.filter(pk__in=[waiting.pk, failed.pk]).exists()
    assert Job.objects.get(pk=result.job.pk).previous == result.job.previous


def test_enqueue_returns_the_job_as_stored():
    job = add(object_id=7, source="a.jpg", queue="q", priority=3, max_attempts=4)
    assert job.pk is not None
    stored = Job.objects.get(pk=job.pk)
    fields = ("target", "object_id", "source", "queue", "priority", "max_attempts", "previous")
    assert [getattr(job, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert stored.run_at == job.run_at
    assert stored.state == "waiting"
    assert stored.locked_by == stored.last_error == ""


def test_enqueue_of_a_new_record_looks_for_no_older_job():
    older = add(object_id=9, source="a.jpg")
    result = queue.enqueue(
        target="demo_site.item.image",
        object_id=9,
        source="b.jpg",
        previous=["x.jpg", "x.jpg", "b.jpg"],
        new_record=True,
    )
    assert result.job.previous_names == ["x.jpg"]
    assert result.superseded_sources == ()
    assert Job.objects.filter(pk=older.pk).exists()


def test_enqueue_in_a_callers_transaction_goes_with_it():
    add(source="a.jpg")
    with transaction.atomic():
        result = queue.enqueue(target="demo_site.item.image", object_id=1, source="b.jpg")
        assert result.superseded_sources == ("a.jpg",)
        transaction.set_rollback(True)
    assert list(Job.objects.values_list("source", flat=True)) == ["a.jpg"]


@pytest.mark.parametrize("new_record", [True, False])
def test_the_databases_enqueue_stores_what_the_portable_one_stores(new_record):
    # Each vendor's own enqueue (SQL of its own) against the base class's ORM
    # path, on two records with the same older jobs: one running, three
    # waiting or failed, their versions overlapping.
    run_at = timezone.now() - timedelta(minutes=1)
    ours, portable = claims.for_database("default"), claims.Claimer("default")
    results = {}
    for object_id, claimer in (("1", ours), ("2", portable)):
        older = [("a.jpg", "v1.jpg\nv0.jpg", "w1"), ("b.jpg", "a.jpg\nv1.jpg", "")]
        older += [("c.jpg", "b.jpg\nx.jpg", ""), ("e.jpg", "", "")]
        older_pks = (
            []
            if new_record
            else [
                Job.objects.create(
                    target="demo_site.item.image",
                    object_id=object_id,
                    source=source,
                    previous=previous,
                    locked_by=locked_by,
                    run_at=run_at,
                ).pk
                for source, previous, locked_by in older
            ]
        )
        job = Job(
            target="demo_site.item.image",
            object_id=object_id,
            source="d.jpg",
            previous="c.jpg\ny.jpg",
            queue="q",
            priority=3,
            max_attempts=4,
            run_at=run_at,
        )
        replaced = claimer.enqueue(job, new_record=new_record)
        stored = Job.objects.get(pk=job.pk)
        # The instance is the row, as a query would load it.
        assert not job._state.adding
        assert job._state.db == "default"
        assert [getattr(job, f.attname) for f in Job._meta.concrete_fields] == [
            getattr(stored, f.attname) for f in Job._meta.concrete_fields
        ]
        kept = list(Job.objects.filter(pk__in=older_pks).values_list("source", flat=True))
        columns = [f.attname for f in Job._meta.concrete_fields]
        row = {c: getattr(stored, c) for c in columns if c not in ("id", "object_id", "created_at")}
        # Which staged files go on commit; in no particular order (PostgreSQL's is the DELETE's).
        results[claimer] = (sorted(replaced), row, kept)
    assert results[ours] == results[portable]
    replaced, row, kept = results[ours]
    if new_record:
        assert (replaced, row["previous"], kept) == ([], "c.jpg\ny.jpg", [])
    else:
        assert replaced == ["b.jpg", "c.jpg", "e.jpg"]
        assert row["previous"].splitlines() == [
            "c.jpg",
            "y.jpg",
            "b.jpg",
            "x.jpg",
            "a.jpg",
            "v1.jpg",
            "v0.jpg",
        ]
        assert kept == ["a.jpg"]


def test_an_enqueue_on_sqlite_is_plain_sql_that_query_logging_sees():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own enqueue")
    add(object_id=1, source="a.jpg")
    with CaptureQueriesContext(connection) as new:
        add(object_id=2, new_record=True)
    with CaptureQueriesContext(connection) as replacing:
        add(object_id=1, source="b.jpg")
    assert [q["sql"].split()[0] for q in new] == ["INSERT"]
    assert "RETURNING" in new[0]["sql"]
    statements = [q["sql"].split()[0] for q in replacing]
    assert [s for s in statements if s not in ("BEGIN", "SAVEPOINT", "RELEASE")] == [
        "SELECT",
        "DELETE",
        "INSERT",
    ]


@pytest.fixture
def listener():
    """A second PostgreSQL connection that LISTENs on the workers' channel."""
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    listening = connection.get_new_connection(connection.get_connection_params())
    listening.autocommit = True
    listening.execute(f"LISTEN {queue.CHANNEL}")
    yield listening
    listening.close()


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_on_postgresql_is_one_statement_that_wakes_workers_on_commit(listener):
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        add(object_id=1, queue="pictures")
    assert len(sent) == 1 or [s.split()[0] for s in sent] == ["PREPARE", "EXECUTE"]
    heard = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in heard] == [(queue.CHANNEL, "pictures")]
    # Inside a transaction the NOTIFY waits for its commit, and goes with its rollback.
    with transaction.atomic():
        add(object_id=2)
        transaction.set_rollback(True)
    assert list(listener.notifies(timeout=0.2)) == []


@pytest.mark.django_db(transaction=True)
def test_every_enqueue_commits_waiting_for_the_disk():
    # Only a claim may relax its commit (a lost claim runs the job again); a lost
    # job would leave an upload processing until the orphan sweep.
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        add(object_id=1, new_record=True)
        add(object_id=2)
    assert any("INSERT" in sql for sql in sent)
    assert not any("synchronous_commit" in sql for sql in sent)


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_leaves_a_job_claimed_while_it_waited_for_its_row():
    if connection.vendor != "postgresql":
        pytest.skip("one statement only on PostgreSQL; elsewhere the ORM's transaction")
    waiting = add(source="a.jpg", previous=["old.jpg"])
    claimer = connection.get_new_connection(connection.get_connection_params())
    results = []

    def enqueue():
        try:
            results.append(
                queue.enqueue(target="demo_site.item.image", object_id=1, source="b.jpg")
            )
        finally:
            connections.close_all()

    try:
        with claimer.transaction():
            claimer.execute(
                "UPDATE attachments_job SET locked_by = 'w' WHERE id = %s", [waiting.pk]
            )
            thread = threading.Thread(target=enqueue)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive()  # its DELETE waits for the claim's row lock
        thread.join(60)
    finally:
        claimer.close()
    (result,) = results
    assert result.superseded_sources == ()
    assert Job.objects.get(pk=waiting.pk).locked_by == "w"
    assert result.job.previous_names == ["old.jpg"]


def test_enqueue_missing_queues_only_records_without_a_job():
    waiting = add(object_id=2, source="mine.jpg")
    queued = queue.enqueue_missing(
        target="demo_site.item.image",
        sources=[(1, "a.jpg"), (2, "b.jpg"), (3, "c.jpg")],
        queue="backfill",
        priority=-1,
        max_attempts=3,
    )
    assert queued == 2
    rows = Job.objects.exclude(pk=waiting.pk).order_by("object_id")
    assert [(j.object_id, j.source, j.queue, j.priority, j.max_attempts) for j in rows] == [
        ("1", "a.jpg", "backfill", -1, 3),
        ("3", "c.jpg", "backfill", -1, 3),
    ]
    assert all(j.state == "waiting" and j.previous == "" for j in rows)
    assert Job.objects.get(pk=waiting.pk).source == "mine.jpg"
    assert queue.enqueue_missing(target="demo_site.item.image", sources=[(1, "a.jpg")]) == 0
    assert queue.enqueue_missing(target="demo_site.item.image", sources=[]) == 0
    assert queue.claim("w", ["backfill"]).object_id == "1"


@pytest.mark.django_db(transaction=True)
def test_enqueue_missing_wakes_workers_once_per_batch(listener):
    sources = [(i, f"{i}.jpg") for i in range(1000)]
    assert queue.enqueue_missing(target="demo_site.item.image", sources=sources) == 1000
    assert queue.enqueue_missing(target="demo_site.item.image", sources=sources) == 0
    heard = list(listener.notifies(timeout=0.5))
    assert [n.payload for n in heard] == ["default"]


def test_claim_takes_due_jobs_by_priority_then_age():
    late = add(object_id=1)
    urgent = add(object_id=2, priority=10)
    scheduled = add(object_id=3)
    Job.objects.filter(pk=scheduled.pk).update(run_at=timezone.now() + timedelta(hours=1))
    assert queue.claim("w") == urgent
    assert queue.claim("w") == late
    assert queue.claim("w") is None


def test_claim_locks_the_job_for_one_worker():
    add()
    job = queue.claim("w1")
    assert (job.locked_by, job.locked_at is not None) == ("w1", True)
    assert queue.claim("w2") is None


def test_claim_serves_only_the_queues_asked_for():
    images = add(object_id=1, queue="images")
    add(object_id=2, queue="other")
    assert queue.claim("w", ["images"]) == images
    assert queue.claim("w", ["images"]) is None


def test_complete_deletes_only_the_workers_own_jobs():
    add(object_id=1)
    add(object_id=2)
    mine, theirs = queue.claim("w1"), queue.claim("w2")
    queue.complete("w1", [mine.pk, theirs.pk])
    assert list(Job.objects.all()) == [theirs]


def test_a_claim_in_a_callers_transaction_leaves_its_commit_synchronous():
    # A worker's own claims commit asynchronously (safe: a lost claim only runs
    # a job again); a caller's transaction must keep its durability.
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    add()
    with transaction.atomic():
        assert queue.claim("w") is not None
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone() == ("on",)


def test_claim_deletes_the_jobs_the_worker_finished():
    first, second = add(object_id=1), add(object_id=2)
    assert queue.claim("w") == first
    assert queue.claim("w", finished=[first.pk]) == second
    assert list(Job.objects.all()) == [second]
    # Also when nothing more is due, and never a job another worker holds.
    third = add(object_id=3)
    assert queue.claim("other") == third
    assert queue.claim("w", finished=[second.pk, third.pk]) is None
    assert list(Job.objects.all()) == [third]


def test_claim_deletes_finished_jobs_when_the_first_queue_is_empty():
    done = add(object_id=1, queue="b")
    assert queue.claim("w", ["b"]) == done
    waiting = add(object_id=2, queue="b")
    assert queue.claim("w", ["a", "b"], finished=[done.pk]) == waiting
    assert list(Job.objects.all()) == [waiting]


@pytest.mark.django_db(transaction=True)
def test_a_claim_that_fails_deletes_no_finished_job():
    # The deletion and the claim share one commit: a worker whose claim fails
    # still holds its done jobs, and deletes them with its next claim.
    done = add(object_id=1)
    assert queue.claim("w") == done
    add(object_id=2)

    def lose_connection_after_claiming(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "UPDATE" in sql.upper():
            raise OperationalError("server has gone away")
        return result

    with (
        connection.execute_wrapper(lose_connection_after_claiming),
        pytest.raises(OperationalError),
    ):
        queue.claim("w", finished=[done.pk])
    assert Job.objects.filter(pk=done.pk, locked_by="w").exists()
    assert Job.objects.get(object_id="2").locked_by == ""


@pytest.mark.django_db(transaction=True)
def test_a_claim_passes_over_a_job_another_worker_is_claiming():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one writer at a time: a second claim waits its turn")
    first, second = add(object_id=1), add(object_id=2)
    holding, release = threading.Event(), threading.Event()
    held = []

    def claim_and_hold():
        # The first worker's claim, its row lock held until release.
        try:
            with transaction.atomic():
                held.append(queue.claim("first"))
                holding.set()
                release.wait(60)
        finally:
            connections.close_all()

    thread = threading.Thread(target=claim_and_hold)
    thread.start()
    try:
        assert holding.wait(60)
        assert queue.claim("second") == second
    finally:
        release.set()
        thread.join(60)
    assert held == [first]
    assert dict(Job.objects.values_list("pk", "locked_by")) == {
        first.pk: "first",
        second.pk: "second",
    }


# The claim's indexes, made by migrations rather than Job.Meta (0001, 0004).
CLAIM_INDEXES = {
    "postgresql": {"attachments_job_claimable", "attachments_job_any_queue"},
    "sqlite": {"attachments_job_claimable", "attachments_job_any_queue"},
    "mysql": {"attachments_job_claim_mysql", "attachments_job_any_mysql"},
}


def claim_plan(sql: str, params: list) -> tuple[set[str], bool]:
    """The indexes the database reads for ``sql`` (the primary key too), and whether it sorts."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Whether the index serves the claim, not whether a tiny table is worth it.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = " ".join(line for (line,) in cursor.fetchall())
            return set(re.findall(r" using (\w+)", plan)), "Sort" in plan
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(detail for *_, detail in cursor.fetchall())
            return set(re.findall(r"USING (?:COVERING )?INDEX (\w+)", plan)), "TEMP B-TREE" in plan
        cursor.execute("EXPLAIN " + sql, params)
        columns = [column[0] for column in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
        return {row["key"]}, "filesort" in row["Extra"]


@pytest.mark.parametrize("queues", [(), ("default",)])
def test_a_claim_reads_an_index_of_claimable_rows_in_order(queues):
    # Mostly failed and running rows, which the claim must not walk through.
    now = timezone.now()
    Job.objects.bulk_create(
        Job(
            target="demo_site.item.image",
            object_id=str(i),
            source="s.jpg",
            failed_at=now if i % 3 == 0 else None,
            locked_by="w" if i % 3 == 1 else "",
        )
        for i in range(300)
    )
    sent = []

    def capture(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            queue.claim("w", queues)
        # The statement that finds the row: MySQL's SELECT, elsewhere the UPDATE around it.
        verb = "SELECT" if connection.vendor == "mysql" else "UPDATE"
        ((sql, params),) = [(sql, params) for sql, params in sent if sql.startswith(verb)]
        indexes, sorts = claim_plan(sql, params)
        transaction.set_rollback(True)
    assert indexes & CLAIM_INDEXES[connection.vendor], indexes
    assert not sorts


def test_fail_schedules_a_retry_with_backoff_then_gives_up():
    add(max_attempts=2)
    job = queue.claim("w")
    assert queue.fail(job, OSError("S3 is down")) is False
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.state == "retrying"
    assert job.run_at >= timezone.now() + timedelta(seconds=15)
    assert "OSError: S3 is down" in job.last_error
    assert queue.claim("w") is None

    Job.objects.update(run_at=timezone.now())
    job = queue.claim("w")
    assert queue.fail(job, OSError("still down")) is True
    job.refresh_from_db()
    assert (job.state, job.attempts, job.failed_at is not None) == ("failed", 2, True)
    assert queue.claim("w") is None


def test_permanent_failure_does_not_burn_attempts():
    add(max_attempts=10)
    job = queue.claim("w")
    assert queue.fail(job, ValueError("not an image"), permanent=True) is True
    assert Job.objects.get().state == "failed"


def test_retry_makes_a_failed_job_due_again():
    add()
    queue.fail(queue.claim("w"), ValueError("x"), permanent=True)
    queue.retry(Job.objects.get())
    job = queue.claim("w")
    assert job is not None
    assert (job.attempts, job.failed_at) == (0, None)


def test_release_hands_a_job_back_untouched():
    add()
    queue.release(queue.claim("w1"))
    job = Job.objects.get()
    assert (job.state, job.attempts) == ("waiting", 0)


@pytest.mark.parametrize("attempts", [1, 2, 5, 10])
def test_backoff_grows_like_sidekiq(attempts):
    delay = queue.backoff(attempts).total_seconds()
    assert attempts**4 + 15 <= delay <= attempts**4 + 15 + 10 * (attempts + 1)


def test_discard_target_keeps_running_jobs_and_names_every_version():
    add(source="a.jpg", previous=["old.jpg"])
    queue.claim("w")
    add(object_id=1, source="b.jpg", previous=["a.jpg"])
    names = queue.discard_target("demo_site.item.image", 1)
    assert Job.objects.get().source == "a.jpg"
    assert sorted(names) == ["a.jpg", "b.jpg", "old.jpg"]


def test_claim_tries_queues_strictly_in_order():
    low = add(object_id=1, queue="default", priority=100)
    urgent = add(object_id=2, queue="urgent")
    assert queue.claim("w", ["urgent", "default"]) == urgent
    assert queue.claim("w", ["urgent", "default"]) == low


def test_claim_respects_a_priority_band():
    add(object_id=1, priority=-5)
    mid = add(object_id=2, priority=0)
    add(object_id=3, priority=50)
    assert queue.claim("w", min_priority=-1, max_priority=10) == mid
    assert queue.claim("w", min_priority=-1, max_priority=10) is None


def test_claim_skips_failed_jobs():
    add()
    queue.fail(queue.claim("w"), ValueError("x"), permanent=True)
    assert queue.claim("w") is None


def test_heartbeat_refreshes_only_the_workers_own_locks():
    add(object_id=1)
    add(object_id=2)
    mine, theirs = queue.claim("me"), queue.claim("them")
    old = timezone.now() - timedelta(minutes=10)
    Job.objects.update(locked_at=old)
    queue.heartbeat("me", [mine.pk, theirs.pk])
    assert Job.objects.get(pk=mine.pk).locked_at > old
    assert Job.objects.get(pk=theirs.pk).locked_at == old


def test_abandoned_jobs_are_queued_again_counting_the_attempt():
    add(object_id=1)
    add(object_id=2)
    dead, alive = queue.claim("dead-worker"), queue.claim("live-worker")
    Job.objects.filter(pk=dead.pk).update(locked_at=timezone.now() - timedelta(minutes=10))
    ((job, _, final),) = queue.recover_abandoned(timedelta(minutes=5))
    assert (job.pk, final) == (dead.pk, False)
    dead.refresh_from_db()
    assert (dead.locked_by, dead.attempts) == ("", 1)
    assert "dead-worker stopped responding" in dead.last_error
    assert dead.state == "retrying"
    alive.refresh_from_db()
    assert alive.locked_by == "live-worker"


def test_abandoned_on_its_last_attempt_fails():
    add(max_attempts=1)
    queue.claim("dead")
    Job.objects.update(locked_at=timezone.now() - timedelta(hours=1))
    ((_, _, final),) = queue.recover_abandoned(timedelta(minutes=5))
    assert final
    assert Job.objects.get().state == "failed"


def test_a_slow_worker_that_sent_a_heartbeat_keeps_its_job(monkeypatch):
    add()
    job = queue.claim("slow")
    Job.objects.update(locked_at=timezone.now() - timedelta(hours=1))
    stale = list(Job.objects.running())

    class Snapshot:
        """What recover_abandoned saw just before the heartbeat landed."""

        def filter(self, **kwargs):
            return stale

    queue.heartbeat("slow", [job.pk])
    monkeypatch.setattr(Job.objects, "running", Snapshot)
    assert queue.recover_abandoned(timedelta(minutes=5)) == []
    assert Job.objects.get().locked_by == "slow"


def test_prune_failed_keeps_recent_failures_and_live_jobs():
    add(object_id=1)
    add(object_id=2)
    add(object_id=3)
    old, recent = queue.claim("w"), queue.claim("w")
    queue.fail(old, ValueError("x"), permanent=True)
    queue.fail(recent, ValueError("x"), permanent=True)
    Job.objects.filter(pk=old.pk).update(failed_at=timezone.now() - timedelta(days=40))
    assert queue.prune_failed(timedelta(days=30)) == 1
    assert Job.objects.failed().count() == 1
    assert Job.objects.pending().count() == 1
