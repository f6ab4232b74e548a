from __future__ import annotations

import io
import re
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from attachments import imaging, processing, queue, storage
from attachments.management.commands.process_attachments import Command as ProcessAttachments
from attachments.models import Job
from attachments.signals import attachment_failed
from attachments.worker import Stats, Tally, Worker
from demo_site.models import Item
from tests import images


def upload(n: int = 1) -> list[Item]:
    items = []
    for i in range(n):
        item = Item(title=f"item {i}")
        item.image.save(f"{i}.png", ContentFile(images.png((40, 30))))
        items.append(item)
    return items


@pytest.mark.django_db
def test_burst_works_off_every_due_job_and_reports():
    items = upload(3)
    out = io.StringIO()
    call_command("process_attachments", burst=True, stdout=out, verbosity=0)
    assert re.fullmatch(
        r"3 jobs processed, 0 failed; [\d.]+ j/s over [\d.]+ s busy of [\d.]+ s\n",
        out.getvalue(),
    )
    assert all(Item.objects.get(pk=i.pk).image.ready for i in items)


@pytest.mark.django_db
def test_burst_on_an_empty_queue_exits_at_once():
    stats = Worker(burst=True).run()
    assert (stats.processed, stats.failed) == (0, 0)


@pytest.mark.django_db
def test_worker_counts_failures():
    item = Item(title="bad")
    item.image.save("x.jpg", ContentFile(images.truncated(images.jpeg((200, 200)), keep=0.3)))
    stats = Worker(burst=True).run()
    assert (stats.processed, stats.failed) == (1, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stats_rate_is_over_busy_time_not_idle_time():
    clock = Clock()
    stats = Stats(clock=clock)
    clock.now += 3600  # an idle hour
    for seconds, outcome in [(1.0, processing.Outcome.READY), (0.5, processing.Outcome.FAILED)]:
        stats.begin()
        clock.now += seconds
        stats.end(outcome)
        clock.now += 60
    tally = stats.tally()
    assert (tally.processed, tally.failed, tally.busy) == (2, 1, 1.5)
    assert str(tally) == "2 jobs processed, 1 failed; 1.3 j/s over 1.5 s busy of 62 min"


def test_stats_count_overlapping_jobs_busy_once_and_a_running_job_so_far():
    clock = Clock()
    stats = Stats(clock=clock)
    stats.begin()
    clock.now += 1
    stats.begin()  # a second thread's job
    clock.now += 1
    stats.end(processing.Outcome.READY)
    clock.now += 1
    stats.end(None)  # handed back: busy, but not processed
    clock.now += 10
    stats.begin()
    clock.now += 2
    assert stats.tally() == Tally(processed=1, failed=0, busy=5.0, elapsed=15.0)


def test_progress_line_covers_the_time_since_the_last_one():
    window = Tally(processed=30, failed=2, busy=12.0, elapsed=3700.0) - Tally(
        processed=10, failed=1, busy=2.0, elapsed=3640.0
    )
    assert str(window) == "20 jobs processed, 1 failed; 2.0 j/s over 10 s busy of 60 s"
    assert str(Tally(elapsed=5)) == "0 jobs processed, 0 failed of 5.0 s"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--poll-interval", "0"],
            "--poll-interval: expected a number of seconds above 0, got '0'",
        ),
        (["--poll-interval", "nan"], "expected a number of seconds above 0, got 'nan'"),
        (["--shutdown-timeout", "soon"], "expected a number of seconds above 0, got 'soon'"),
        (["--concurrency", "0"], "--concurrency: expected a whole number of 1 or more, got '0'"),
        (["--concurrency", "2.5"], "expected a whole number of 1 or more, got '2.5'"),
        (["--min-priority", "high"], "--min-priority: expected a whole number (higher runs first)"),
        (
            ["--min-priority", "5", "--max-priority", "1"],
            "--min-priority 5 is above --max-priority 1",
        ),
    ],
)
def test_bad_option_values_say_what_is_wrong(args, message):
    with pytest.raises(CommandError) as raised:
        call_command("process_attachments", *args)
    assert message in str(raised.value)
    assert "invalid" not in str(raised.value)


def test_readme_worker_section_explains_every_option():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### The worker") :]
    section = section[: section.index("\n### ")]
    parser = ProcessAttachments().create_parser("manage.py", "process_attachments")
    base = BaseCommand().create_parser("manage.py", "x")._option_string_actions
    ours = {
        option
        for option in parser._option_string_actions
        if option.startswith("--") and option not in base
    }
    assert "--shutdown-timeout" in ours
    explained = set(re.findall(r"^\| `(--[a-z-]+)", section, re.MULTILINE))
    assert ours <= explained, f"not in the README: {sorted(ours - explained)}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_long_running_worker_picks_up_new_work_and_stops_cleanly_on_signal(start_worker, signum):
    worker = start_worker("--poll-interval", "0.05")
    time.sleep(1.5)  # let it start and go idle
    (item,) = upload(1)
    deadline = time.monotonic() + 15
    while not Item.objects.get(pk=item.pk).image.ready:
        assert time.monotonic() < deadline, worker.stderr.read() if worker.poll() else "timeout"
        time.sleep(0.05)
    worker.send_signal(signum)
    out, err = worker.communicate(timeout=15)
    assert worker.returncode == 0, err
    assert out.strip() == out.strip().splitlines()[-1]
    assert out.startswith("1 job processed, 0 failed; ")
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrency_runs_jobs_on_threads_each_exactly_once():
    items = upload(8)
    seen: list[int] = []
    threads: set[str] = set()

    def run(job):
        seen.append(job.pk)
        threads.add(threading.current_thread().name)
        return processing.run(job)

    stats = Worker(burst=True, concurrency=3, run=run).run()
    assert stats.processed == 8
    assert sorted(seen) == sorted(set(seen))
    assert len(threads) > 1
    assert all(Item.objects.get(pk=i.pk).image.ready for i in items)


@pytest.mark.django_db(transaction=True)
def test_threads_find_the_next_job_claimed_ahead():
    """With both threads busy, the worker holds one more job for whichever ends first."""
    upload(4)
    both_running, lock = threading.Barrier(2), threading.Lock()
    started: list[int] = []
    held: list[int] = []  # the most jobs locked at once, as each of the first two saw

    def run(job):
        with lock:
            started.append(job.pk)
            first_two = len(started) <= 2
        if first_two:  # both wait until the claimer has run ahead, and a little more
            both_running.wait(10)
            most, deadline, settled = 0, time.monotonic() + 10, None
            while time.monotonic() < (settled or deadline):
                most = max(most, Job.objects.running().count())
                if most >= 3 and settled is None:
                    settled = time.monotonic() + 0.2  # time enough to claim a fourth
                time.sleep(0.01)
            held.append(most)
        return processing.run(job)

    assert Worker(burst=True, concurrency=2, run=run).run().processed == 4
    assert held == [3, 3]


@pytest.mark.django_db
def test_worker_serves_only_its_queues():
    upload(1)
    assert Worker(burst=True, queues=["other"]).run().processed == 0
    assert Worker(burst=True, queues=["other", "default"]).run().processed == 1


@pytest.mark.django_db
def test_housekeeping_fails_the_record_of_a_job_abandoned_on_its_last_attempt(settings):
    (item,) = upload(1)
    Job.objects.update(
        max_attempts=1, locked_by="gone", locked_at=timezone.now() - timedelta(hours=1)
    )
    Worker(burst=True).run()
    item.refresh_from_db()
    assert item.image.failed
    assert "gone stopped responding" in Job.objects.get().last_error


@pytest.mark.django_db
def test_housekeeping_finishes_a_job_lost_on_its_last_attempt_after_publishing():
    (item,) = upload(1)
    original = storage.staging_storage().open(item.image.name).read()
    job = queue.claim("gone")
    assert processing.process(job) is processing.Outcome.READY
    # The worker died after publishing, before its clean-up and on its last attempt.
    storage.staging_storage().save(item.image.name, ContentFile(original))
    Job.objects.update(max_attempts=1, locked_at=timezone.now() - timedelta(hours=1))
    Worker(burst=True).run()
    item.refresh_from_db()
    assert item.image.ready
    assert not Job.objects.exists()
    assert not storage.staging_storage().exists(item.image.name)


@pytest.mark.django_db
def test_housekeeping_keeps_a_lost_job_failed_when_its_clean_up_fails(monkeypatch):
    (item,) = upload(1)
    job = queue.claim("gone")
    assert processing.process(job) is processing.Outcome.READY
    Job.objects.update(max_attempts=1, locked_at=timezone.now() - timedelta(hours=1))

    def storage_down(*args):
        raise OSError("storage unavailable")

    monkeypatch.setattr(processing, "_clean_up", storage_down)
    assert Worker(burst=True).run().processed == 0  # and the worker went on
    item.refresh_from_db()
    assert item.image.ready
    assert Job.objects.get().failed_at is not None
    monkeypatch.undo()
    assert processing.retry(Job.objects.get())
    assert Worker(burst=True).run().processed == 1
    assert not Job.objects.exists()
    item.refresh_from_db()
    assert item.image.ready


@pytest.mark.django_db
def test_housekeeping_goes_on_when_an_attachment_failed_receiver_raises():
    (item,) = upload(1)
    Job.objects.update(
        max_attempts=1, locked_by="gone", locked_at=timezone.now() - timedelta(hours=1)
    )

    def broken_receiver(**kwargs):
        raise RuntimeError("a bug in the project's receiver")

    attachment_failed.connect(broken_receiver)
    try:
        assert Worker(burst=True).run().processed == 0
    finally:
        attachment_failed.disconnect(broken_receiver)
    item.refresh_from_db()
    assert item.image.failed
    assert Job.objects.get().failed_at is not None


@pytest.mark.django_db
def test_housekeeping_prunes_old_failures_when_asked(settings):
    upload(1)
    Job.objects.update(failed_at=timezone.now() - timedelta(days=8))
    Worker(burst=True).run()
    assert Job.objects.count() == 1
    settings.ATTACHMENTS = {"KEEP_FAILED_DAYS": 7}
    Worker(burst=True).run()
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_each_claim_deletes_the_job_done_before_it(monkeypatch):
    upload(3)
    claims: list[list[int]] = []
    real_claim = queue.claim

    def recording_claim(*args, finished=(), **kwargs):
        claims.append(list(finished))
        return real_claim(*args, finished=finished, **kwargs)

    monkeypatch.setattr(queue, "claim", recording_claim)
    monkeypatch.setattr(queue, "complete", lambda *a: pytest.fail("a separate commit per job"))
    ids = list(Job.objects.order_by("id").values_list("id", flat=True))
    assert Worker(burst=True).run().processed == 3
    # One statement per job claims it and deletes the one before; the last
    # (empty) claim deletes the last job.
    assert claims == [[], ids[:1], ids[1:2], ids[2:]]
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_jobs_failing_or_retrying_are_kept():
    item = Item(title="bad")
    item.image.save("x.jpg", ContentFile(images.truncated(images.jpeg((200, 200)), keep=0.3)))
    Worker(burst=True).run()
    assert Job.objects.get().state == "failed"


@pytest.mark.django_db(transaction=True)
def test_stopping_deletes_done_jobs_no_claim_took_along():
    upload(2)

    def run_then_stop(job):
        outcome = processing.run(job)
        if Item.objects.filter(image_state="ready").count() == 2:
            worker.stop()
        return outcome

    worker = Worker(concurrency=2, run=run_then_stop)
    assert worker.run().processed == 2
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_images_over_the_memory_budget_run_one_at_a_time(settings, monkeypatch):
    settings.ATTACHMENTS = {"MEMORY_BUDGET": 1}  # every image is over it
    items = upload(4)
    decoding, most = [0], [0]
    real_decode = imaging.rendering._decode

    def counting_decode(*args):
        decoding[0] += 1
        most[0] = max(most[0], decoding[0])
        time.sleep(0.05)  # give the other threads every chance to overlap
        try:
            return real_decode(*args)
        finally:
            decoding[0] -= 1

    monkeypatch.setattr(imaging.rendering, "_decode", counting_decode)  # where render calls it
    assert Worker(burst=True, concurrency=3).run().processed == 4
    assert all(Item.objects.get(pk=i.pk).image.ready for i in items)
    assert most[0] == 1


@pytest.mark.django_db(transaction=True)
def test_second_signal_stops_the_drain_even_when_its_handler_runs_late(caplog):
    """A signal's Python handler runs in the main thread, between bytecodes.

    One that lands just before the main thread blocks waits for that wait to
    end. Sent to another thread here (whose handler cannot wake the main one),
    it must still stop the drain long before SHUTDOWN_TIMEOUT.
    """
    caplog.set_level("INFO", logger="attachments")
    upload(1)
    running, release = threading.Event(), threading.Event()

    def stuck(job):
        running.set()
        release.wait(30)
        return processing.Outcome.SUPERSEDED

    worker = Worker(concurrency=2, shutdown_timeout=60, run=stuck)

    def stop_then_signal():
        assert running.wait(10)
        worker.stop()  # the first signal's work: the signal below is the second
        deadline = time.monotonic() + 10
        while not any(m.startswith("Waiting up to") for m in caplog.messages):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # the main thread is surely blocked in its wait by now
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=stop_then_signal, daemon=True).start()
    started = time.monotonic()
    try:
        worker.run()
        assert time.monotonic() - started < 10
        assert worker.forced
        job = Job.objects.get()
        assert (job.locked_by, job.attempts) == ("", 0)
    finally:
        release.set()
        deadline = time.monotonic() + 10
        while any(t.name.startswith("attachments-") for t in threading.enumerate()):
            assert time.monotonic() < deadline
            time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_shutdown_timeout_bounds_an_inline_job_claimed_as_the_signal_came(monkeypatch):
    """SIGTERM between a claim and the job's start: the inline job still gets only the timeout."""
    upload(1)
    claim = queue.claim

    def claim_then_signal(*args, **kwargs):
        job = claim(*args, **kwargs)
        if job is not None:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
        return job

    def stuck(job):
        threading.Event().wait(30)  # a signal interrupts this wait
        return processing.Outcome.SUPERSEDED

    monkeypatch.setattr(queue, "claim", claim_then_signal)
    worker = Worker(shutdown_timeout=0.2, run=stuck)
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 10
    assert worker.forced
    job = Job.objects.get()
    assert (job.locked_by, job.attempts) == ("", 0)
