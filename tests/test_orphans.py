"""Uploads whose job never reached the queue are found and queued again."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile

from attachments import orphans, processing, queue, storage
from attachments.models import Job
from attachments.worker import Worker
from demo_site.models import Item
from tests import images
from tests.testapp.models import Avatar

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def orphan(age: timedelta = 2 * HOUR) -> Item:
    """An upload whose web process died between the record's commit and its job's."""
    item = Item(title="orphan")
    item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
    Job.objects.all().delete()
    age_staged(item, age)
    return item


def age_staged(item: Item, age: timedelta) -> None:
    path = storage.staging_storage().path(item.image.name)
    then = time.time() - age.total_seconds()
    os.utime(path, (then, then))


def test_an_orphaned_upload_is_queued_again_and_processed():
    item = orphan()
    assert orphans.requeue(HOUR) == 1
    job = Job.objects.get()
    assert (job.target, job.object_id, job.source) == (
        "demo_site.item.image",
        str(item.pk),
        item.image.name,
    )
    assert orphans.requeue(HOUR) == 0  # it has a job now
    assert Worker(burst=True).run().processed == 1
    item.refresh_from_db()
    assert item.image.ready


def test_a_worker_looks_for_orphans_when_it_starts():
    item = orphan(age=timedelta(days=1))
    assert Worker(burst=True).run().processed == 1
    item.refresh_from_db()
    assert item.image.ready


def test_a_fresh_upload_may_still_be_getting_its_job():
    orphan(age=timedelta(seconds=10))
    assert orphans.requeue(HOUR) == 0
    assert Job.objects.count() == 0


def test_records_with_jobs_or_settled_are_left_alone():
    failed = orphan()
    Item.objects.filter(pk=failed.pk).update(image_state="failed")
    waiting = Item(title="waiting")
    waiting.image.save("w.jpg", ContentFile(images.jpeg((64, 48))))
    age_staged(waiting, 2 * HOUR)
    Item.objects.create(title="no image")
    assert orphans.requeue(HOUR) == 0
    assert Job.objects.count() == 1


def test_fields_processed_in_the_request_are_not_queued():
    avatar = Avatar()
    avatar.image.save("me.png", ContentFile(images.png((16, 16))))  # on commit: never here
    assert avatar.image.processing
    assert orphans.requeue(timedelta(0)) == 0


def test_an_orphan_whose_original_is_gone_fails_visibly():
    item = orphan()
    storage.staging_storage().delete(item.image.name)
    assert orphans.requeue(HOUR) == 1
    Job.objects.update(max_attempts=1)
    assert processing.run(queue.claim("w")) is processing.Outcome.FAILED
    item.refresh_from_db()
    assert item.image.failed
    assert "No such file" in Job.objects.get().last_error


def test_discarding_a_waiting_job_fails_its_record_so_it_is_no_orphan():
    item = Item(title="x")
    item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
    age_staged(item, 2 * HOUR)
    assert processing.discard(Job.objects.get())
    item.refresh_from_db()
    assert item.image.failed
    assert orphans.requeue(HOUR) == 0


def test_a_failing_sweep_never_stops_the_worker(monkeypatch):
    def broken(older_than):
        raise RuntimeError("storage backend says no")

    monkeypatch.setattr(orphans, "requeue", broken)
    item = Item(title="x")
    item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
    assert Worker(burst=True).run().processed == 1
    item.refresh_from_db()
    assert item.image.ready
