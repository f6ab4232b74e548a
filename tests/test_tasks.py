"""``BACKEND="tasks"``: the job table stays the ledger, a task backend only wakes runners.

In-process, with Django's DummyBackend as the transport: ``deliver`` plays the
engine's worker, running each task sent so far. The real engines (RQ, Celery,
django-tasks-db) run the same paths as real processes in ``test_engines.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from attachments import processing, queue, storage
from attachments.checks import check_settings
from attachments.exceptions import JobFailed
from attachments.models import Alarm, Job
from attachments.reprocess import Reprocess, select
from demo_site.models import Item
from tests import images
from tests.uploads import upload

djangotasks = pytest.importorskip(
    "attachments.djangotasks", reason="needs Django 6.0, or the django-tasks backport"
)

# Real commits: a task is sent once its job is committed.
pytestmark = pytest.mark.django_db(transaction=True)

DUMMY = "django.tasks.backends.dummy.DummyBackend"
if djangotasks.SOURCE == "django_tasks":
    DUMMY = "django_tasks.backends.dummy.DummyBackend"


@pytest.fixture
def backend(settings):
    """The DummyBackend as the transport."""
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    return djangotasks.task_backends["default"]


def sent(backend, name: str = "process_attachment") -> list:
    return [result for result in backend.results if result.task.name == name]


def deliver(backend, name: str = "process_attachment") -> list[object]:
    """Run every task ``name`` sent so far, as the engine's worker would; return what each did."""
    results = sent(backend, name)
    for result in results:
        backend.results.remove(result)
    outcomes = []
    for result in results:
        try:
            outcomes.append(result.task.call(*result.args))
        except JobFailed as exc:
            outcomes.append(exc)
    return outcomes


def test_an_upload_queues_its_job_and_sends_its_id_once_committed(backend):
    with transaction.atomic():
        upload()
        job = Job.objects.get()  # in the same transaction as the record
        assert backend.results == []  # nothing before commit: a runner would find no job
    (result,) = backend.results
    assert result.task.name == "process_attachment"
    assert result.args == [job.pk]
    assert result.task.queue_name == "default"


def test_a_delivered_task_publishes_the_upload_and_deletes_its_job(backend):
    item = upload()
    assert deliver(backend) == ["ready"]
    item.refresh_from_db()
    assert item.image.ready
    with item.image.storage.open(item.image.styles["square"].name) as fp:
        assert fp.read(3) == b"\xff\xd8\xff"
    assert not Job.objects.exists()


def test_a_second_delivery_of_the_same_job_does_nothing(backend):
    upload()
    (result,) = backend.results
    backend.results.append(result)  # an at-least-once broker delivers it twice
    job = Job.objects.get()
    queue.claim_job(job.pk, "first-runner")
    assert deliver(backend) == ["skipped", "skipped"]  # while the first one runs it
    assert Job.objects.get().locked_by == "first-runner"


def test_an_undecodable_upload_fails_with_its_error_in_the_job_and_the_task(backend):
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    (failure,) = deliver(backend)
    assert isinstance(failure, JobFailed)  # the engine records the task as failed too
    job = Job.objects.get()
    assert job.state == "failed"
    assert "InvalidImage" in job.last_error
    assert "InvalidImage" in str(failure)
    item.refresh_from_db()
    assert item.image.failed


def test_a_retryable_failure_is_sent_again_for_the_jobs_backoff(backend, monkeypatch):
    item = upload()

    def storage_down(*args):
        raise ConnectionError("endpoint down")

    monkeypatch.setattr(storage, "put", storage_down)
    assert deliver(backend) == ["retrying"]
    job = Job.objects.get()
    assert (job.attempts, job.state) == (1, "retrying")
    (retry,) = sent(backend)
    assert retry.args == [job.pk]
    assert retry.task.run_after == job.run_at
    monkeypatch.undo()
    # Delivered early (a clock ahead), it goes back to sleep until the job is due.
    assert deliver(backend) == ["skipped"]
    (again,) = sent(backend)
    assert again.task.run_after == job.run_at
    Job.objects.update(run_at=timezone.now())
    assert deliver(backend) == ["ready"]
    item.refresh_from_db()
    assert item.image.ready


def test_the_last_attempt_fails_the_job_for_good(backend, monkeypatch, settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks", "MAX_ATTEMPTS": 2}
    item = upload()
    monkeypatch.setattr(storage, "put", lambda *args: (_ for _ in ()).throw(OSError("down")))
    assert deliver(backend) == ["retrying"]
    Job.objects.update(run_at=timezone.now())
    (failure,) = deliver(backend)
    assert isinstance(failure, JobFailed)
    assert Job.objects.get().state == "failed"
    assert sent(backend) == []
    item.refresh_from_db()
    assert item.image.failed


def test_uploads_replacing_each_other_before_any_runs_delete_every_superseded_version(backend):
    item = upload()
    deliver(backend)
    item.refresh_from_db()
    first = [item.image.name, *(style.name for style in item.image.styles.values())]
    item.image.save("b.jpg", ContentFile(images.jpeg((200, 150))))
    item.image.save("c.jpg", ContentFile(images.jpeg((100, 80))))
    newest = item.image.name
    assert Job.objects.count() == 1  # B's job was replaced by C's, which carries A
    assert deliver(backend) == ["skipped", "ready"]
    item = Item.objects.get(pk=item.pk)
    assert item.image.name == newest
    assert item.image.ready
    assert not any(item.image.storage.exists(name) for name in first)
    assert not Job.objects.exists()


def test_retrying_from_the_dashboard_sends_the_task_again(backend, admin_client):
    upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    deliver(backend)
    job = Job.objects.get()
    response = admin_client.post(
        "/admin/attachments/job/",
        {"action": "retry_now", "_selected_action": [job.pk], "index": 0},
    )
    assert response.status_code == 302
    (result,) = sent(backend)
    assert result.args == [job.pk]
    assert Job.objects.get().state == "waiting"


def test_a_runner_arms_one_housekeeping_task_at_a_time(backend):
    upload()
    upload()
    deliver(backend)
    (alarm,) = sent(backend, "housekeep")
    assert alarm.task.run_after == Alarm.objects.get().due_at


def test_housekeeping_recovers_a_killed_runners_job_and_wakes_a_runner_for_it(backend):
    item = upload()
    job = Job.objects.get()
    # A runner claimed it and died: its lock is stale.
    queue.claim_job(job.pk, "killed")
    Job.objects.update(locked_at=timezone.now() - timedelta(hours=1))
    backend.results.clear()
    tasks = pytest.importorskip("attachments.tasks")
    tasks.arm()
    assert deliver(backend, "housekeep") == [1]
    job.refresh_from_db()
    assert (job.locked_by, job.attempts) == ("", 1)
    assert "killed stopped responding" in job.last_error
    (wake,) = sent(backend)
    assert wake.task.run_after == job.run_at  # after the job's backoff
    Job.objects.update(run_at=timezone.now())
    assert deliver(backend) == ["ready"]
    item.refresh_from_db()
    assert item.image.ready
    # Work outstanding kept the alarm going; now the ledger is empty, the next one ends it.
    assert deliver(backend, "housekeep") == [0]
    assert sent(backend, "housekeep") == []


def test_a_job_whose_task_could_not_be_sent_is_shown_and_sent_again(backend, monkeypatch):
    real_enqueue = type(backend).enqueue

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(type(backend), "enqueue", broker_down)
    item = upload()  # the request does not fail: the upload is in the ledger
    job = Job.objects.get()
    assert job.state == "waiting"
    assert job.last_error.startswith(queue.UNSENT)  # in the dashboard
    assert "ConnectionError: broker down" in job.last_error
    monkeypatch.setattr(type(backend), "enqueue", real_enqueue)
    tasks = pytest.importorskip("attachments.tasks")
    tasks.arm()  # as the next runner would
    assert deliver(backend, "housekeep") == [1]
    assert Job.objects.get().last_error == ""
    assert deliver(backend) == ["ready"]
    item.refresh_from_db()
    assert item.image.ready


def test_housekeeping_never_sends_a_backlog_again(backend):
    upload()
    Job.objects.update(run_at=timezone.now() - timedelta(hours=1))  # waiting for long
    tasks = pytest.importorskip("attachments.tasks")
    tasks.arm()
    assert deliver(backend, "housekeep") == [0]
    assert len(sent(backend)) == 1  # only the upload's own


# System checks


def check_ids() -> list[str]:
    return [message.id for message in check_settings()]


def test_the_tasks_backend_with_a_deferring_backend_passes_the_checks(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    assert check_ids() == []


def test_an_unknown_tasks_alias_is_a_check_error(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks", "TASKS_BACKEND": "images"}
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    assert check_ids() == ["attachments.E161"]


def test_a_missing_backend_class_is_a_check_error(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_nowhere.Backend"}}
    assert check_ids() == ["attachments.E161"]


def test_a_field_queue_the_backend_does_not_declare_is_a_check_error(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": DUMMY, "QUEUES": ["default"]}}
    field = Item._meta.get_field("image")
    field.queue = "images"
    try:
        errors = check_settings()
    finally:
        field.queue = None
    assert [e.id for e in errors] == ["attachments.E163"]
    assert errors[0].obj is field


def test_the_default_queue_missing_from_the_backend_is_a_check_error(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": DUMMY, "QUEUES": ["images"]}}
    assert check_ids() == ["attachments.E162"]


def test_a_priority_on_a_backend_without_priorities_is_a_check_error(settings, monkeypatch):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    monkeypatch.setattr(type(djangotasks.task_backends["default"]), "supports_priority", False)
    monkeypatch.setattr(Item._meta.get_field("image"), "priority", 5)
    assert check_ids() == ["attachments.E164"]


def test_a_backend_that_cannot_defer_is_warned_about(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    immediate = DUMMY.replace("dummy.DummyBackend", "immediate.ImmediateBackend")
    settings.TASKS = {"default": {"BACKEND": immediate}}
    assert check_ids() == ["attachments.W060"]


def test_without_the_tasks_framework_the_tasks_backend_is_a_check_error(settings, monkeypatch):
    from attachments import checks

    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    monkeypatch.setattr(checks, "_HAS_TASKS", False)
    assert check_ids() == ["attachments.E160"]


def test_the_immediate_task_backend_processes_in_the_request(
    settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}
    immediate = DUMMY.replace("dummy.DummyBackend", "immediate.ImmediateBackend")
    settings.TASKS = {"default": {"BACKEND": immediate}}
    with django_capture_on_commit_callbacks(execute=True):
        item = upload()
    item.refresh_from_db()
    assert item.image.ready
    assert not Job.objects.exists()
    assert processing.Outcome.READY.done


def test_reprocessing_sends_a_task_for_each_job_it_queues(backend, settings):
    item = upload()
    deliver(backend)
    item.refresh_from_db()
    assert item.image.ready
    settings.ATTACHMENTS = {**settings.ATTACHMENTS, "JPEG_QUALITY": 70}  # every style due again
    summary = Reprocess(select([])).run()
    assert summary.done == 1
    job = Job.objects.get()
    assert [result.args for result in sent(backend)] == [[job.pk]]
    assert deliver(backend) == ["ready"]
    assert not Job.objects.exists()
