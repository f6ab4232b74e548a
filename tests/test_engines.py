"""``BACKEND="tasks"`` through the engines users already run, as real worker processes.

RQ (django-tasks-rq, on the local Redis), Celery (django-tasks-celery, on the
local RabbitMQ) and django-tasks-db, each with its own worker command as the
README gives it. For each: an upload is published; a storage outage is retried
to *ready* by our ledger's backoff; an undecodable file ends *failed* with its
error in the job row; and a worker SIGKILLed mid-job has its upload recovered.
The field's storage in the workers is ``tests.faulty_storage.FaultyStorage``,
steered through files, so faults land at moments the test knows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from attachments.models import Job
from demo_site.models import Item
from tests import images
from tests.conftest import ROOT
from tests.uploads import upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUEUE = os.environ["ATTACHMENTS_TEST_QUEUE"]  # one per test run: see tests/settings.py
# Fast recovery of killed runners' jobs, fast retries.
FAST = {"HEARTBEAT_INTERVAL": 0.2, "LOCK_TIMEOUT": 1, "BACKOFF_SCALE": 0.01}
TIMEOUT = 60.0  # a deadline for failing on a loaded machine, never an expectation


@dataclass(frozen=True)
class Engine:
    name: str
    module: str  # the backend's package
    service: tuple[str, int] | None  # the broker it needs
    tasks: dict[str, object]
    command: tuple[str, ...]  # how its worker is started, as the README says


MANAGE = (sys.executable, str(ROOT / "manage.py"))
ENGINES = [
    Engine(
        "rq",
        "django_tasks_rq",
        ("127.0.0.1", 6379),
        {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [QUEUE]}},
        (*MANAGE, "rqworker", QUEUE, "--job-class", "django_tasks_rq.Job", "--with-scheduler"),
    ),
    Engine(
        "celery",
        "django_tasks_celery",
        ("127.0.0.1", 5672),
        {
            "default": {
                "BACKEND": "django_tasks_celery.CeleryBackend",
                "QUEUES": [QUEUE],
                "OPTIONS": {"CELERY_APP": "tests.celery_app.app"},
            }
        },
        (
            *(sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-Q", QUEUE),
            *("--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"),
        ),
    ),
    Engine(
        "db",
        "django_tasks_db",
        None,
        {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": [QUEUE]}},
        (*MANAGE, "db_worker", "--queue-name", QUEUE, "--interval", "0.1", "--no-startup-delay"),
    ),
]


class Workers:
    """Starts an engine's workers on the test database; kills what is left at the end."""

    def __init__(self, engine: Engine, env: dict[str, str], logs: Path) -> None:
        self.engine, self.env, self.logs = engine, env, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.started)}.log"
        process = subprocess.Popen(
            self.engine.command,
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children (RQ's work horse) die with it
        )
        self.started.append(process)
        return process

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.logs.glob("worker-*.log"))
        )

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        # Politely first: a killed rqworker keeps its scheduler lock for a minute,
        # holding up the retries of the next test's worker.
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=ENGINES, ids=[engine.name for engine in ENGINES])
def engine(request, settings, media, tmp_path) -> Iterator[Workers]:
    engine: Engine = request.param
    pytest.importorskip(engine.module)
    if engine.service and not reachable(engine.service):
        if os.environ.get("CI"):
            pytest.fail(f"{engine.name} needs its broker on {engine.service}; .ci/run starts it")
        pytest.skip(f"no broker for {engine.name} on {engine.service}")
    faults = tmp_path / "faults"
    faults.mkdir()
    storages = {
        **django_settings.STORAGES,
        "default": {"BACKEND": "tests.faulty_storage.FaultyStorage"},
    }
    attachments = {"BACKEND": "tasks", "QUEUE": QUEUE, **FAST}
    settings.ATTACHMENTS = attachments
    settings.TASKS = engine.tasks
    settings.STORAGES = storages
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ATTACHMENTS_TEST_CHILD_DB": str(connection.settings_dict["NAME"]),
        "ATTACHMENTS_TEST_MEDIA_ROOT": str(media),
        "ATTACHMENTS_TEST_SETTINGS": json.dumps(attachments),
        "ATTACHMENTS_TEST_STORAGES": json.dumps(storages),
        "ATTACHMENTS_TEST_TASKS": json.dumps(engine.tasks),
        "ATTACHMENTS_TEST_FAULTS": str(faults),
        "PYTHONUNBUFFERED": "1",
    }
    workers = Workers(engine, env, tmp_path)
    workers.faults = faults  # type: ignore[attr-defined]
    yield workers
    workers.stop()


def ready(item: Item) -> bool:
    item.refresh_from_db()
    return item.image.ready and not Job.objects.exists()


def assert_published(item: Item) -> None:
    item.refresh_from_db()
    assert item.image.ready
    for name in (item.image.name, *(style.name for style in item.image.styles.values())):
        assert item.image.storage.exists(name), name
    assert not Job.objects.exists()


def test_an_upload_is_published(engine):
    item = upload()
    engine.start()
    engine.wait_for(lambda: ready(item), "the upload to be published")
    assert_published(item)


def test_a_storage_outage_is_retried_to_ready(engine):
    (engine.faults / "fail").write_text("2")
    item = upload()
    engine.start()
    engine.wait_for(lambda: ready(item), "the upload to be published after the outage")
    assert (engine.faults / "fail").read_text() == "0"  # both failures happened, then a retry
    assert_published(item)


def test_an_undecodable_upload_fails_with_its_error_in_the_job(engine):
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    engine.start()
    engine.wait_for(lambda: Job.objects.filter(failed_at__isnull=False).exists(), "the failure")
    job = Job.objects.get()
    assert "InvalidImage" in job.last_error
    assert job.attempts == 1  # never retried: it cannot succeed
    # The record is marked just after the job row, in its own statement.
    engine.wait_for(lambda: Item.objects.get(pk=item.pk).image.failed, "the record's failure")


def test_a_worker_killed_mid_job_has_its_upload_recovered(engine):
    (engine.faults / "block").touch()
    item = upload()
    first = engine.start()
    blocked = engine.faults / "blocked"
    engine.wait_for(blocked.exists, "the job to start")
    # The process running the job: the worker itself, or RQ's work horse.
    runner = int(blocked.read_text())
    os.kill(runner, signal.SIGKILL)
    if runner == first.pid:
        first.wait(10)
    else:
        assert first.poll() is None  # RQ's worker outlives its horse
    (engine.faults / "block").unlink()
    if first.poll() is not None:
        engine.start()
    engine.wait_for(lambda: ready(item), "the killed worker's upload to be recovered")
    assert_published(item)
