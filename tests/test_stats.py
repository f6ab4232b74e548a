from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attachments import processing, stats
from attachments.models import Job, WorkerStat
from attachments.worker import Worker

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def rows() -> list[tuple[str, datetime, int, int]]:
    return list(
        WorkerStat.objects.order_by("worker", "minute").values_list(
            "worker", "minute", "processed", "failed"
        )
    )


def make_job(**fields: object) -> Job:
    return Job.objects.create(target="demo_site.item.image", object_id="1", source="a", **fields)


# Counting and flushing


def test_flush_writes_totals_per_minute():
    clock = Clock()
    counts = stats.MinuteCounts(clock)
    counts.add(failed=False)
    counts.add(failed=True)
    clock.now += 61
    counts.add(failed=False)
    assert counts.flush("w1") == 2
    assert rows() == [("w1", at(T0), 2, 1), ("w1", at(T0 + 60), 1, 0)]


def test_flush_rewrites_totals_instead_of_adding_them():
    clock = Clock()
    counts = stats.MinuteCounts(clock)
    counts.add(failed=False)
    counts.flush("w1")
    counts.add(failed=True)
    counts.add(failed=False)
    assert counts.flush("w1") == 1
    assert rows() == [("w1", at(T0), 3, 1)]


def test_flush_writes_only_changed_minutes_and_nothing_when_idle():
    clock = Clock()
    counts = stats.MinuteCounts(clock)
    counts.add(failed=False)
    counts.flush("w1")
    with CaptureQueriesContext(connection) as queries:
        assert counts.flush("w1") == 0
    assert len(queries) == 0
    WorkerStat.objects.update(processed=99)  # a changed minute is rewritten, others kept
    clock.now += 60
    counts.add(failed=False)
    counts.flush("w1")
    assert rows() == [("w1", at(T0), 99, 0), ("w1", at(T0 + 60), 1, 0)]


def test_workers_own_their_rows():
    for worker, n in [("w1", 2), ("w2", 3)]:
        counts = stats.MinuteCounts(Clock())
        for _ in range(n):
            counts.add(failed=False)
        counts.flush(worker)
    assert rows() == [("w1", at(T0), 2, 0), ("w2", at(T0), 3, 0)]


def test_a_failed_flush_is_done_again_later():
    counts = stats.MinuteCounts(Clock())
    counts.add(failed=True)
    with (
        mock.patch.object(WorkerStat.objects, "bulk_create", side_effect=DatabaseError),
        pytest.raises(DatabaseError),
    ):
        counts.flush("w1")
    assert rows() == []
    assert counts.flush("w1") == 1
    assert rows() == [("w1", at(T0), 1, 1)]


def test_due_only_with_news_and_not_right_after_a_flush():
    counts = stats.MinuteCounts(Clock())
    assert not counts.due()
    counts.add(failed=False)
    assert counts.due()
    counts.flush("w1")
    counts.add(failed=False)
    assert not counts.due()  # FLUSH_EVERY has not passed


def test_memory_keeps_only_the_minutes_worth_keeping():
    clock = Clock()
    counts = stats.MinuteCounts(clock)
    counts.add(failed=False)
    clock.now += stats.KEEP.total_seconds() + 120
    counts.add(failed=False)
    counts.flush("w1")
    assert len(counts._counts) == 1


@pytest.mark.parametrize("use_tz", [True, False])
def test_minutes_round_trip_with_and_without_time_zone_support(settings, use_tz):
    settings.USE_TZ = use_tz
    counts = stats.MinuteCounts(Clock())
    counts.add(failed=False)
    counts.flush("w1")
    counts.add(failed=False)
    counts.flush("w1")
    assert WorkerStat.objects.get().processed == 2
    assert stats.throughput(now=T0 + 30).minutes[-1].processed == 2


# Pruning


def test_prune_deletes_rows_older_than_the_horizon():
    now = timezone.now()
    WorkerStat.objects.create(worker="w", minute=now - timedelta(minutes=90), processed=1)
    kept = WorkerStat.objects.create(worker="w", minute=now - timedelta(minutes=30), processed=1)
    assert stats.prune(timedelta(hours=1)) == 1
    assert list(WorkerStat.objects.all()) == [kept]


# Aggregation for the dashboard


def test_throughput_sums_workers_per_minute_and_fills_gaps():
    for worker, minute, processed, failed in [
        ("a", T0 - 120, 4, 1),
        ("b", T0 - 120, 6, 0),
        ("a", T0, 3, 3),
        ("a", T0 - 15 * 60, 100, 0),  # just outside 15 minutes
        ("a", T0 + 60, 100, 0),  # the future
    ]:
        WorkerStat.objects.create(
            worker=worker, minute=at(minute), processed=processed, failed=failed
        )
    result = stats.throughput(15, now=T0 + 30)
    assert [m.start for m in result.minutes] == [at(T0 - 60 * i) for i in range(14, -1, -1)]
    assert [(m.processed, m.failed) for m in result.minutes[-3:]] == [(10, 1), (0, 0), (3, 3)]
    assert sum(m.processed for m in result.minutes) == 13


def test_rate_covers_the_last_five_minutes_including_the_current_one():
    for minute in range(5):
        WorkerStat.objects.create(worker="w", minute=at(T0 - 60 * minute), processed=9, failed=1)
    # Four whole minutes and half of the current one.
    result = stats.throughput(15, now=T0 + 30)
    assert result.rate == pytest.approx(45 / 4.5)
    assert result.failure_rate == pytest.approx(5 / 4.5)


def test_queue_counts_agree_with_job_state():
    now = timezone.now()
    later = now + timedelta(hours=1)
    jobs = [
        make_job(run_at=now),
        make_job(run_at=now, attempts=3),  # a retry whose time has come waits like any job
        make_job(run_at=later),
        make_job(run_at=later, attempts=1),
        make_job(locked_by="w", locked_at=now),
        make_job(failed_at=now, queue="slow"),
        make_job(failed_at=now, queue="slow"),
    ]
    assert stats.queue_counts(now) == {
        "default": {"waiting": 2, "scheduled": 1, "retrying": 1, "running": 1, "failed": 0},
        "slow": {"waiting": 0, "scheduled": 0, "retrying": 0, "running": 0, "failed": 2},
    }
    for job in jobs:
        for state in stats.STATES:
            matches = Job.objects.filter(stats.state_filter(state, now), pk=job.pk).exists()
            assert matches == (job.state == state), (job, state)


# The worker


def noop(job: Job) -> processing.Outcome:
    Job.objects.filter(pk=job.pk).delete()
    return processing.Outcome.READY


def test_worker_writes_its_counts_now_and_then_not_per_job():
    for _ in range(40):
        make_job()
    with CaptureQueriesContext(connection) as queries:
        Worker(burst=True, run=noop, worker_id="w1").run()
    writes = [q for q in queries if "attachments_workerstat" in q["sql"] and "INSERT" in q["sql"]]
    # After the first job (so a new worker shows up at once), then at the end.
    assert len(writes) <= 3
    assert WorkerStat.objects.get().processed == 40


def test_worker_counts_failures():
    def fail(job: Job) -> processing.Outcome:
        Job.objects.filter(pk=job.pk).delete()
        return processing.Outcome.FAILED

    make_job()
    Worker(burst=True, run=fail, worker_id="w1").run()
    assert (WorkerStat.objects.get().processed, WorkerStat.objects.get().failed) == (1, 1)


def test_worker_survives_a_failed_flush(caplog):
    make_job()
    with mock.patch.object(WorkerStat.objects, "bulk_create", side_effect=DatabaseError("down")):
        stats_ = Worker(burst=True, run=noop).run()
    assert stats_.processed == 1
    assert "Could not save worker stats" in caplog.text


def test_housekeeping_prunes_old_stats():
    WorkerStat.objects.create(worker="w", minute=timezone.now() - timedelta(hours=2))
    Worker(burst=True).run()
    assert not WorkerStat.objects.exists()
