"""The worker as real OS processes: many at once, killed, stopped by signals, woken by NOTIFY.

Every test here starts ``manage.py process_attachments`` subprocesses (the
``start_worker`` fixture) on the test database and MEDIA_ROOT, so it needs
``django_db(transaction=True)``: workers only see committed rows. Nothing waits
for a fixed time where a condition can be polled instead; the bounds below are
deadlines for failing, never what a test expects to take.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from attachments import queue, storage
from attachments.models import Job
from demo_site.models import Item
from tests import images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def postgres_only(test: Callable[..., None]) -> Callable[..., None]:
    skip = pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (ATTACHMENTS_TEST_DB=postgres)"
    )
    return pytest.mark.postgres(skip(test))


def server_only(test: Callable[..., None]) -> Callable[..., None]:
    """For a database server (PostgreSQL, MySQL/MariaDB): SQLite runs one writer at a time."""
    return pytest.mark.skipif(
        connection.vendor == "sqlite", reason="needs a database server (ATTACHMENTS_TEST_DB)"
    )(test)


TARGET = "demo_site.item.image"
STYLES = list(Item._meta.get_field("image").styles)
# Deadlines for failing, generous for a loaded 2-core machine.
START_TIMEOUT = 30.0
JOB_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0
JOB_LINE = re.compile(r" INFO Job (\d+) (\S+)#(\S+) (\w+) in \d+ ms$", re.MULTILINE)
STATS_LINE = re.compile(
    r"^(\d+) jobs? processed, (\d+) failed(?:; [\d.]+ j/s over [\d.]+ s busy)? of [\w. ]+$"
)


# -- Worker processes ---------------------------------------------------------


class WorkerProcess:
    """A started worker whose stdout and stderr are read as they come.

    Reading in threads keeps the pipes drained (a worker logging thousands of
    jobs would otherwise block on a full pipe) and lets a test wait for a line.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.pid = process.pid
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True) for name in self._lines
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        stream = getattr(self.process, name)
        try:
            for line in stream:
                with self._changed:
                    self._lines[name].append(line.rstrip("\n"))
                    self._changed.notify_all()
        except (OSError, ValueError):  # closed under us by a teardown
            pass
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self._lines["stderr"])

    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """Wait until a line of stderr matches ``pattern``; fail if the worker exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                lines = self._lines["stderr"]
                for line in lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(lines)
                exited = self.process.poll() is not None and not any(
                    reader.is_alive() for reader in self._readers
                )
                remaining = deadline - time.monotonic()
                if exited or remaining <= 0:
                    why = "exited" if exited else "timed out"
                    pytest.fail(f"Worker {self.pid} {why} before logging {pattern!r}:\n{self.log}")
                self._changed.wait(min(remaining, 0.5))

    def wait_until_started(self) -> str:
        """Return the worker's id once it has started."""
        return self.wait_for_log(r"INFO Worker (\S+) started").group(1)

    def finish(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the worker to exit and for its output; return its exit code."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # its stacks (tests/settings.py)
            with contextlib.suppress(pytest.fail.Exception):
                self.wait_for_log(r"^(Current thread|Thread) 0x", timeout=5)
                time.sleep(0.5)  # the rest of the dump: it has no end marker to wait for
            pytest.fail(f"Worker {self.pid} still running after {timeout}s:\n{self.log}")
        for reader in self._readers:
            reader.join(10)
        return code

    def assert_exit(self, expected: int, timeout: float = EXIT_TIMEOUT) -> None:
        """Wait for the worker to exit with ``expected``."""
        code = self.finish(timeout)
        assert code == expected, f"Worker {self.pid} exited with {code}:\n{self.log}"

    def stop(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for reader in self._readers:
            reader.join(10)

    def jobs(self) -> list[tuple[int, str]]:
        """``(job id, outcome)`` of every job this worker logged."""
        return [(int(m.group(1)), m.group(4)) for m in JOB_LINE.finditer(self.stderr)]

    def stats(self) -> tuple[int, int]:
        """``(processed, failed)`` from the last line of stdout."""
        last = self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""
        match = STATS_LINE.match(last)
        assert match, f"No stats line in stdout {self.stdout!r}:\n{self.log}"
        return int(match.group(1)), int(match.group(2))

    @property
    def log(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@pytest.fixture
def spawn(start_worker) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker (arguments as for ``start_worker``) and read its output."""
    started: list[WorkerProcess] = []

    def spawn(
        *args: str, settings: dict[str, object] | None = None, command: str = "process_attachments"
    ) -> WorkerProcess:
        worker = WorkerProcess(start_worker(*args, settings=settings, command=command))
        started.append(worker)
        return worker

    yield spawn
    # Before start_worker's own teardown, so the readers are done with the pipes.
    for worker in started:
        worker.kill()


# -- Data and conditions -----------------------------------------------------


# Slow jobs are larger than the default MAX_PIXELS allows: uploads and workers raise it.
SLOW_SIZE = (9000, 9000)
SLOW = {"MAX_PIXELS": 90_000_000}


@cache
def slow_png() -> bytes:
    """A PNG that takes a worker about a second to process (81 Mpx).

    Plain RGB, so that no single step holds the main thread in C for more than
    about 0.1 s (RGBA spends most of the job in one premultiplying ``convert``):
    signals and the shutdown timeout act on an inline job promptly. Below
    Pillow's decompression-bomb warning; one copy serves the session.
    """
    return images.encode(images.pattern(SLOW_SIZE), "PNG", compress_level=1)


def upload(data: bytes, title: str = "item") -> Item:
    """An item with ``data`` staged and its job queued, as a form upload leaves it."""
    item = Item(title=title)
    item.image.save(f"{title}.png", ContentFile(data))
    return item


@pytest.fixture
def upload_slow(settings) -> Callable[..., Item]:
    """Upload ``slow_png`` (allowed by raising MAX_PIXELS in this process)."""
    settings.ATTACHMENTS = {**settings.ATTACHMENTS, **SLOW}
    return lambda title="big": upload(slow_png(), title)


def stage_items(count: int, data: bytes) -> list[Item]:
    """``count`` items whose uploads are staged, in bulk and without jobs.

    What ``AttachmentFieldFile.save`` leaves, minus the per-item work: the
    original in the staging storage under a fresh directory, the record
    ``processing``.
    """
    staging = Path(storage.staging_storage().location)
    items = []
    for i in range(count):
        name = f"items/{uuid.uuid4().hex}/bulk-{i}.png"
        (staging / name).parent.mkdir(parents=True)
        (staging / name).write_bytes(data)
        items.append(Item(title=f"bulk {i}", image=name, image_state="processing"))
    return Item.objects.bulk_create(items)


def staged_path(item: Item) -> Path:
    return Path(storage.staging_storage().path(item.image.name))


def block_staged_original(item: Item) -> None:
    """Swap the staged original for a named pipe that nobody writes to.

    Opening it blocks, so the job stays running (in a system call, as on a
    stalled network file system) for as long as the test needs.
    """
    path = staged_path(item)
    path.unlink()
    os.mkfifo(path)


def published(media: Path, item: Item) -> list[str]:
    """Which of the item's original and styles exist in the final storage."""
    names = [item.image.name, *(item.image.style_file(style) for style in STYLES)]
    return [name for name in names if name and (media / name).is_file()]


def assert_published(media: Path, item: Item) -> None:
    """The item is ready, original and styles are in the final storage, nothing is staged."""
    item.refresh_from_db()
    assert item.image_state == "ready"
    assert published(media, item) == [item.image.name, *map(item.image.style_file, STYLES)]
    assert not staged_path(item).exists()


def assert_handed_back(job: Job, item: Item) -> None:
    """The job is waiting again as if never claimed; the upload is still staged."""
    job.refresh_from_db()
    assert (job.locked_by, job.locked_at, job.attempts, job.failed_at, job.last_error) == (
        "",
        None,
        0,
        None,
        "",
    )
    assert job.run_at <= timezone.now()
    item.refresh_from_db()
    assert item.image_state == "processing"
    assert staged_path(item).is_file() or staged_path(item).is_fifo()


def assert_reported_handed_back(worker: WorkerProcess, job: Job) -> None:
    """The worker's log names the job it handed back."""
    worker.wait_for_log(
        rf"WARNING Stopped at once; handed 1 job\(s\) back to the queue: "
        rf"{job.pk} \({re.escape(job.target)}#{job.object_id}\)\.$"
    )


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, *workers: WorkerProcess
) -> object:
    """Poll ``condition`` until it is truthy and return it.

    Fail after ``timeout``, or at once if one of ``workers`` (which should be
    running) has exited, with their logs.
    """
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        exited = [worker for worker in workers if worker.process.poll() is not None]
        if exited or time.monotonic() > deadline:
            logs = "\n".join(worker.log for worker in workers)
            why = "a worker exited" if exited else f"{timeout}s passed"
            pytest.fail(f"Gave up waiting for {what} ({why}):\n{logs}")
        time.sleep(0.01)
    return result


def running_jobs(count: int = 1) -> Callable[[], list[Job]]:
    """A condition: the running jobs, once there are ``count`` of them."""

    def condition() -> list[Job]:
        jobs = list(Job.objects.running().order_by("pk"))
        return jobs if len(jobs) >= count else []

    return condition


def client_backends() -> list[tuple[int, str, object]]:
    """``(pid, last query, its start)`` of every other session on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, query, query_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchall()


def listening() -> bool:
    return any(query == f"LISTEN {queue.CHANNEL}" for _, query, _ in client_backends())


def sample_backends(seconds: float) -> list[tuple[int, str, object]]:
    """Every row ``client_backends`` shows while watching for ``seconds``."""
    rows: list[tuple[int, str, object]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows += client_backends()
        time.sleep(0.005)
    return rows


# -- Many workers at once -----------------------------------------------------

BULK_JOBS = 1000


@server_only
def test_four_workers_run_every_job_exactly_once(spawn, media):
    """1,000 jobs (8x8 PNGs) shared by four worker processes: each job runs once.

    The workers wait idle (LISTEN on PostgreSQL, polling elsewhere) before one
    transaction queues every job, so all four find work at once and each
    claims its share. 1,000 rather
    than 2,000 keeps the test well under a minute on a busy 2-core machine
    (1,000 took 10 s idle; 2,000 took 40-55 s under load).
    """
    items = stage_items(BULK_JOBS, images.png((8, 8)))
    workers = [spawn() for _ in range(4)]
    for worker in workers:
        worker.wait_until_started()
    started = time.monotonic()
    with transaction.atomic():
        jobs = Job.objects.bulk_create(
            Job(target=TARGET, object_id=str(item.pk), source=item.image.name) for item in items
        )
        queue.notify("default")
    wait_until(lambda: not Job.objects.exists(), 120, "an empty queue", *workers)
    elapsed = time.monotonic() - started
    assert [worker.stop() for worker in workers] == [0, 0, 0, 0]

    runs = Counter(pk for worker in workers for pk, _ in worker.jobs())
    assert sorted(pk for pk, count in runs.items() if count > 1) == []
    assert set(runs) == {job.pk for job in jobs}
    outcomes = Counter(outcome for worker in workers for _, outcome in worker.jobs())
    assert outcomes == {"ready": BULK_JOBS}
    shares = [len(worker.jobs()) for worker in workers]
    assert all(shares), shares
    assert [worker.stats() for worker in workers] == [(share, 0) for share in shares]
    print(f"{BULK_JOBS} jobs in {elapsed:.1f}s, shares {shares}")

    assert not Item.objects.exclude(image_state="ready").exists()
    assert all(len(published(media, item)) == 3 for item in Item.objects.all())
    staging = Path(storage.staging_storage().location)
    assert [path for path in staging.rglob("*") if path.is_file()] == []


# -- A worker killed mid-job --------------------------------------------------


def test_job_of_a_killed_worker_is_recovered_and_completed(spawn, media, upload_slow):
    """kill -9 during a job: after LOCK_TIMEOUT the next worker puts it back, then runs it.

    Heartbeats keep the lock fresh while the worker lives. The recovered job
    counts the lost attempt and waits out the usual back-off (16-36 s after a
    first attempt), which the test skips by making it due. The job is stuck
    opening its staged original (a FIFO) until the kill, so it surely outlives
    a heartbeat.
    """
    settings = {**SLOW, "HEARTBEAT_INTERVAL": 0.2, "LOCK_TIMEOUT": 1}
    item = upload_slow()
    original = staged_path(item).read_bytes()
    block_staged_original(item)
    killed = spawn(settings=settings)
    killed_id = killed.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "the job to be claimed", killed)
    beaten = Job.objects.filter(pk=job.pk, locked_by=killed_id, locked_at__gt=job.locked_at)
    wait_until(beaten.exists, JOB_TIMEOUT, "a heartbeat", killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.assert_exit(-signal.SIGKILL)
    job.refresh_from_db()
    assert job.locked_by == killed_id, "the job ended before the kill"
    assert killed.jobs() == []

    # Recovery needs a lock older than LOCK_TIMEOUT when the next worker looks.
    def stale() -> bool:
        cutoff = timezone.now() - timedelta(seconds=1.5)
        return Job.objects.filter(pk=job.pk, locked_at__lt=cutoff).exists()

    wait_until(stale, 10, "the lock to go stale")
    recovering = spawn("--burst", settings=settings)
    recovering.assert_exit(0)
    recovering.wait_for_log(
        rf"WARNING Job {job.pk}: Worker {re.escape(killed_id)} "
        r"stopped responding .* It is queued again\.$"
    )
    assert recovering.stats() == (0, 0)
    job.refresh_from_db()
    assert (job.locked_by, job.locked_at, job.attempts, job.failed_at) == ("", None, 1, None)
    assert job.last_error.startswith("attachments.queue.WorkerLost: ")
    assert f"Worker {killed_id} stopped responding while running this job" in job.last_error
    assert job.run_at > timezone.now() + timedelta(seconds=10)
    item.refresh_from_db()
    assert item.image_state == "processing"
    assert staged_path(item).exists()

    staged_path(item).unlink()
    staged_path(item).write_bytes(original)
    Job.objects.filter(pk=job.pk).update(run_at=timezone.now())
    finishing = spawn("--burst", settings=settings)
    finishing.assert_exit(0)
    assert finishing.jobs() == [(job.pk, "ready")]
    assert finishing.stats() == (1, 0)
    assert not Job.objects.exists()
    assert_published(media, item)


def test_job_of_a_worker_killed_after_publishing_leaves_the_item_ready(spawn, media):
    """A worker killed between publishing and deleting its job (the last two steps of a job).

    Its job comes back as ``recover_abandoned`` leaves it, on its last attempt;
    running it again only repeats the clean-up and keeps the attachment ready.
    """
    item = upload(images.png((64, 48)))
    first = spawn("--burst")
    first.assert_exit(0)
    assert_published(media, item)
    job = Job.objects.create(  # the job as recovered from the dead worker, due again
        target=TARGET,
        object_id=str(item.pk),
        source=item.image.name,
        attempts=1,
        max_attempts=2,
        last_error="attachments.queue.WorkerLost: Worker gone:1:dead stopped responding",
    )
    rerun = spawn("--burst")
    rerun.assert_exit(0)
    assert rerun.jobs() == [(job.pk, "ready")]
    assert not Job.objects.exists()
    assert_published(media, item)


# -- Stopping on signals ------------------------------------------------------


def test_heartbeats_go_on_while_running_jobs_finish(spawn, media):
    item = upload(images.png((64, 48)), "stuck")
    block_staged_original(item)
    worker = spawn(settings={"HEARTBEAT_INTERVAL": 0.2, "SHUTDOWN_TIMEOUT": 60})
    worker.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "a running job", worker)
    beaten = Job.objects.filter(pk=job.pk, locked_at__gt=job.locked_at)
    wait_until(beaten.exists, JOB_TIMEOUT, "a heartbeat", worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.wait_for_log(r"INFO Received SIGTERM: finishing running jobs\.$")
    # Five intervals on, so that a beat already under way when the signal came does not count.
    later = timezone.now() + timedelta(seconds=1)
    beating = Job.objects.filter(pk=job.pk, locked_by__gt="", locked_at__gt=later)
    wait_until(beating.exists, 4, "heartbeats while the job finishes", worker)


def test_sigterm_lets_running_jobs_finish_and_claims_no_more(spawn, media, upload_slow):
    """SIGTERM with two jobs running and a third claimed ahead: the two finish, exit 0.

    The third, which no thread started, goes back to the queue untouched.
    """
    items = [upload_slow(f"big-{i}") for i in range(3)]
    worker = spawn("--concurrency", "2", settings=SLOW)
    worker.wait_until_started()
    claimed = wait_until(running_jobs(3), JOB_TIMEOUT, "two running jobs, one ahead", worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.assert_exit(0)
    worker.wait_for_log(r"INFO Received SIGTERM: finishing running jobs\.$")
    worker.wait_for_log(r"INFO Waiting up to 30s for 2 running job\(s\)\.$")
    ran = dict(worker.jobs())
    assert list(ran.values()) == ["ready", "ready"], worker.log
    assert STATS_LINE.fullmatch(worker.stdout), worker.log
    assert worker.stats() == (2, 0)

    done = {int(job.object_id) for job in claimed if job.pk in ran}
    for item in items:
        if item.pk in done:
            assert_published(media, item)
    (waiting,) = Job.objects.all()  # the third, handed back without a run
    assert waiting.pk in {job.pk for job in claimed} - set(ran)
    assert (waiting.locked_by, waiting.attempts) == ("", 0)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_shutdown_timeout_hands_a_running_job_back(spawn, media, upload_slow, concurrency):
    """SIGTERM, then SHUTDOWN_TIMEOUT passes: exit 1, the job back in the queue as it was.

    On a thread the job is stuck opening its staged original, so it surely
    outlives the timeout; inline, the timer interrupts the main thread between
    bytecodes, which a blocked system call never reaches, so the job is a slow
    one there instead.
    """
    item = upload_slow()
    original = staged_path(item).read_bytes()
    if concurrency > 1:
        block_staged_original(item)
    # Inline, the timeout must pass well within the slow job (about 0.4 s here).
    timeout = 0.2 if concurrency > 1 else 0.05
    settings = {**SLOW, "SHUTDOWN_TIMEOUT": timeout}
    worker = spawn("--concurrency", str(concurrency), settings=settings)
    worker.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "a running job", worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.assert_exit(1)
    worker.wait_for_log(rf"WARNING Running jobs? outlived the shutdown timeout \({timeout}s\)")
    assert_reported_handed_back(worker, job)
    assert worker.stats() == (0, 0)
    assert worker.jobs() == []
    assert_handed_back(job, item)

    staged_path(item).unlink()
    staged_path(item).write_bytes(original)
    later = spawn("--burst", settings=SLOW)
    later.assert_exit(0)
    assert later.jobs() == [(job.pk, "ready")]
    assert not Job.objects.exists()
    assert_published(media, item)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_second_signal_stops_at_once_and_hands_the_job_back(spawn, media, concurrency):
    """A second SIGTERM while running jobs finish: stop now, well before SHUTDOWN_TIMEOUT.

    The job is stuck opening its staged original, so it is surely still running
    when the second signal comes; put back, the original lets a later worker finish.
    """
    item = upload(images.png((64, 48)), "stuck")
    original = staged_path(item).read_bytes()
    block_staged_original(item)
    worker = spawn("--concurrency", str(concurrency), settings={"SHUTDOWN_TIMEOUT": 60})
    worker.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "a running job", worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.wait_for_log(r"INFO Received SIGTERM: finishing running jobs\.$")
    if concurrency > 1:
        worker.wait_for_log(r"INFO Waiting up to 60s for 1 running job\(s\)\.$")
    else:
        # The handler logs that line before it marks the worker as stopping, and
        # nothing observable follows for an inline job: a signal sent at once
        # can still count as a first one. Give the handler a moment to finish.
        time.sleep(0.3)
    worker.process.send_signal(signal.SIGTERM)
    worker.assert_exit(1, timeout=10)
    worker.wait_for_log(r"WARNING Received SIGTERM again: stopping at once\.$")
    assert_reported_handed_back(worker, job)
    assert worker.stats() == (0, 0)
    assert_handed_back(job, item)

    staged_path(item).unlink()
    staged_path(item).write_bytes(original)
    later = spawn("--burst")
    later.assert_exit(0)
    assert later.jobs() == [(job.pk, "ready")]
    assert_published(media, item)


# Run in a worker's process by `manage.py shell -c`: the first SIGTERM comes as
# soon as a job is claimed, the second once that job has ended and the worker
# is cleaning up (deleting the done job's row). Signals sent from outside could
# not land there on purpose.
SIGNAL_AFTER_THE_LAST_JOB = """
import os, signal
from django.core.management import call_command
from attachments import queue

claim, complete = queue.claim, queue.complete

def claim_then_signal(*args, **kwargs):
    job = claim(*args, **kwargs)
    if job is not None:
        os.kill(os.getpid(), signal.SIGTERM)
    return job

def signal_then_complete(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return complete(*args, **kwargs)

queue.claim, queue.complete = claim_then_signal, signal_then_complete
call_command("process_attachments")
"""


def test_second_signal_after_the_last_job_ended_exits_1_after_cleaning_up(spawn, media):
    """Before, the handlers were gone by then and SIGTERM killed the worker (status 143)."""
    item = upload(images.png((64, 48)))
    worker = spawn("-c", SIGNAL_AFTER_THE_LAST_JOB, command="shell")
    worker.assert_exit(1)
    worker.wait_for_log(r"INFO Received SIGTERM: finishing running jobs\.$")
    worker.wait_for_log(r"WARNING Received SIGTERM again: stopping at once\.$")
    assert [outcome for _, outcome in worker.jobs()] == ["ready"]
    assert worker.stats() == (1, 0)
    assert not Job.objects.exists()  # the clean-up went on to delete the done job
    assert_published(media, item)


# As above, but the second signal comes once the worker has returned, while
# ``manage.py process_attachments`` (run as a program) prints and exits.
SIGNAL_AS_THE_WORKER_RETURNS = """
import os, signal
from django.core.management import execute_from_command_line
from attachments import queue, worker

claim, run = queue.claim, worker.Worker.run

def claim_then_signal(*args, **kwargs):
    job = claim(*args, **kwargs)
    if job is not None:
        os.kill(os.getpid(), signal.SIGTERM)
    return job

def run_then_signal(self):
    stats = run(self)
    os.kill(os.getpid(), signal.SIGTERM)
    return stats

queue.claim, worker.Worker.run = claim_then_signal, run_then_signal
execute_from_command_line(["manage.py", "process_attachments"])
"""


def test_second_signal_as_the_worker_exits_is_held_back_and_exits_1(spawn, media):
    """Before, the handlers were restored by then and SIGTERM killed the worker (status 143)."""
    item = upload(images.png((64, 48)))
    worker = spawn("-c", SIGNAL_AS_THE_WORKER_RETURNS, command="shell")
    worker.assert_exit(1)
    assert worker.stats() == (1, 0)
    assert not Job.objects.exists()
    assert_published(media, item)


@pytest.mark.parametrize(
    "concurrency",
    [1, 2],
)
def test_shutdown_timeout_bounds_a_job_blocked_in_io(spawn, media, concurrency):
    """SHUTDOWN_TIMEOUT also bounds a job stuck reading its staged original."""
    item = upload(images.png((64, 48)), "stuck")
    block_staged_original(item)
    worker = spawn("--concurrency", str(concurrency), settings={"SHUTDOWN_TIMEOUT": 0.2})
    worker.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "a running job", worker)
    worker.process.send_signal(signal.SIGTERM)
    worker.assert_exit(1, timeout=3)  # 15 times the timeout
    assert_handed_back(job, item)


# -- PostgreSQL: LISTEN/NOTIFY and connections --------------------------------


@postgres_only
def test_idle_worker_is_woken_by_notify(spawn, media):
    """An idle worker LISTENs, so a new upload is picked up without waiting for a poll."""
    worker = spawn("--poll-interval", "60")
    worker.wait_until_started()
    wait_until(listening, START_TIMEOUT, "the worker to LISTEN", worker)
    uploaded = time.monotonic()
    item = upload(images.png((64, 48)))
    ready = Item.objects.filter(pk=item.pk, image_state="ready")
    wait_until(ready.exists, 5, "the upload to be processed", worker)
    print(f"ready {time.monotonic() - uploaded:.3f}s after the upload")
    assert worker.stop() == 0
    assert worker.stats() == (1, 0)
    assert "LISTEN is not available" not in worker.stderr
    assert_published(media, item)


@postgres_only
def test_idle_worker_keeps_its_database_connections(spawn, media):
    """A few sessions for life (claiming, listening), not one per look at the table."""
    worker = spawn()
    worker.wait_until_started()
    wait_until(listening, START_TIMEOUT, "the worker to LISTEN", worker)
    pids = {pid for pid, _, _ in sample_backends(2)}
    assert len(pids) <= 3, f"{len(pids)} sessions in 2 s"


@postgres_only
def test_idle_listening_worker_does_not_poll_the_table(spawn, media):
    """Woken by NOTIFY, an idle worker looks at the table only as a fallback, once a second."""
    worker = spawn()
    worker.wait_until_started()
    wait_until(listening, START_TIMEOUT, "the worker to LISTEN", worker)
    claims = {
        (pid, started)
        for pid, query, started in sample_backends(3)
        if query.startswith('UPDATE "attachments_job" SET "locked_by"')
    }
    assert len(claims) <= 5, f"{len(claims)} claims in 3 s"


@postgres_only
def test_heartbeat_survives_a_lost_database_connection(spawn, media):
    item = upload(images.png((64, 48)), "stuck")
    block_staged_original(item)
    worker = spawn(settings={"HEARTBEAT_INTERVAL": 0.2})
    worker.wait_until_started()
    (job,) = wait_until(running_jobs(), JOB_TIMEOUT, "a running job", worker)

    def heartbeat_sessions() -> list[int]:
        beat = 'UPDATE "attachments_job" SET "locked_at"'
        return [pid for pid, query, _ in client_backends() if query.startswith(beat)]

    (pid,) = wait_until(heartbeat_sessions, 10, "a heartbeat", worker)
    with connection.cursor() as cursor:  # as a restart or failover of the server would
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    lost = timezone.now() + timedelta(seconds=0.5)  # past a beat under way at the time
    beating = Job.objects.filter(pk=job.pk, locked_by__gt="", locked_at__gt=lost)
    wait_until(beating.exists, 3, "a heartbeat after the lost connection", worker)
