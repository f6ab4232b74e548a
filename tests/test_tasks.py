"""The ``tasks`` backend: uploads processed through Django's Tasks framework."""

from __future__ import annotations

import pytest

from attachments.models import Job
from tests import images
from tests.uploads import upload

pytest.importorskip("django.tasks", reason="Django's Tasks framework arrived in Django 6.0")

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks_backend(settings):
    settings.ATTACHMENTS = {"BACKEND": "tasks"}


def test_upload_is_sent_to_the_task_backend_on_commit(
    tasks_backend, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    from django.tasks import default_task_backend

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        item = upload()
    assert default_task_backend.results == []  # nothing before commit
    for callback in callbacks:
        callback()
    (result,) = default_task_backend.results
    assert result.task.name == "process_attachment"
    assert result.args == ["demo_site.item.image", str(item.pk), item.image.name, []]
    assert result.task.queue_name == "default"
    assert Job.objects.count() == 0


def test_immediate_task_backend_publishes_the_styles(
    tasks_backend, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        item = upload()
    item.refresh_from_db()
    assert item.image.ready
    with item.image.storage.open(item.image.styles["square"].name) as fp:
        assert fp.read(3) == b"\xff\xd8\xff"


def test_undecodable_upload_fails_the_attachment_and_ends_the_task(
    tasks_backend, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    item.refresh_from_db()
    assert item.image.failed
