"""What a job does with one upload, and how each kind of failure ends."""

from __future__ import annotations

import threading

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from attachments import plan, processing, queue, storage
from attachments.geometry import parse_geometry
from attachments.models import Job
from attachments.signals import attachment_failed, attachment_processed
from attachments.styles import Processor, Style
from demo_site.models import Item
from tests import images
from tests.testapp.models import Avatar
from tests.uploads import upload

pytestmark = pytest.mark.django_db


def run_next() -> processing.Outcome:
    return processing.run(queue.claim("test-worker"))


@pytest.mark.parametrize(
    ("outcome", "done"),
    [
        ("READY", True),
        ("SUPERSEDED", True),
        ("RETRYING", False),
        ("FAILED", False),
        ("HANDED_BACK", False),
    ],
)
def test_only_published_or_moot_jobs_are_done(outcome, done):
    # The worker deletes the rows of done jobs; the others keep their error.
    assert processing.Outcome[outcome].done is done


def test_success_sends_processed_signal():
    received = []
    attachment_processed.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t")
    try:
        item = upload()
        assert run_next() is processing.Outcome.READY
    finally:
        attachment_processed.disconnect(dispatch_uid="t")
    assert received[0]["object_id"] == str(item.pk)
    assert received[0]["name"] == item.image.name


def test_undecodable_original_fails_at_once_with_a_readable_error():
    failures = []
    attachment_failed.connect(lambda **kw: failures.append(kw), weak=False, dispatch_uid="t")
    try:
        # Passes the header probe in the request, breaks on full decode.
        item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
        assert run_next() is processing.Outcome.FAILED
    finally:
        attachment_failed.disconnect(dispatch_uid="t")
    job = Job.objects.get()
    assert job.state == "failed"
    assert job.attempts == 1
    assert "InvalidImage" in job.last_error
    item.refresh_from_db()
    assert item.image.failed
    assert item.image.url == item.image.field.failed_placeholder_url
    # The original stays staged, so nothing is lost and the job can be retried.
    assert storage.staging_storage().exists(item.image.name)
    assert failures[0]["object_id"] == str(item.pk)


def test_storage_outage_retries_and_keeps_the_placeholder(monkeypatch):
    item = upload()
    real_put = storage.put
    calls = []

    def flaky_put(target, name, content):
        calls.append(name)
        if len(calls) == 2:  # the original is stored, the first style is not
            raise ConnectionError("endpoint down")
        real_put(target, name, content)

    monkeypatch.setattr(storage, "put", flaky_put)
    assert run_next() is processing.Outcome.RETRYING
    item.refresh_from_db()
    assert item.image.processing
    job = Job.objects.get()
    assert (job.state, job.attempts) == ("retrying", 1)
    assert "endpoint down" in job.last_error
    assert storage.staging_storage().exists(item.image.name)

    monkeypatch.setattr(storage, "put", real_put)
    Job.objects.update(run_at=timezone.now())
    assert run_next() is processing.Outcome.READY
    item.refresh_from_db()
    assert item.image.ready


def test_last_attempt_marks_the_record_failed(monkeypatch):
    item = upload()
    Job.objects.update(max_attempts=1)
    monkeypatch.setattr(storage, "put", lambda *a: (_ for _ in ()).throw(TimeoutError("slow")))
    assert run_next() is processing.Outcome.FAILED
    item.refresh_from_db()
    assert item.image.failed
    assert "TimeoutError: slow" in Job.objects.get().last_error


def test_error_after_the_record_moved_on_is_a_no_op(monkeypatch):
    upload()

    def replaced_meanwhile(*args, **kwargs):
        Item.objects.update(image="items/newer/b.jpg")
        raise FileNotFoundError("staged file was removed by the newer upload")

    monkeypatch.setattr(processing.renditions, "make", replaced_meanwhile)
    assert run_next() is processing.Outcome.SUPERSEDED


def test_record_deleted_while_its_job_runs():
    item = upload()
    job = queue.claim("test-worker")
    Item.objects.filter(pk=item.pk).delete()
    assert processing.run(job) is processing.Outcome.SUPERSEDED
    assert not storage.staging_storage().exists(item.image.name)


def test_job_for_an_unknown_field_fails_permanently():
    queue.enqueue(target="nope.nothing.image", object_id=1, source="a.jpg")
    assert run_next() is processing.Outcome.FAILED
    assert "No attachment field" in Job.objects.get().last_error


def test_retry_from_code_runs_a_failed_job_again():
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    run_next()
    item.refresh_from_db()
    assert item.image.failed
    # Say the file was repaired in the staging storage (or a bug fixed in the code).
    staged = storage.staging_storage()
    staged.delete(item.image.name)
    staged.save(item.image.name, ContentFile(images.jpeg((320, 240))))
    processing.retry(Job.objects.get())
    item.refresh_from_db()
    assert item.image.processing
    assert run_next() is processing.Outcome.READY
    item.refresh_from_db()
    assert item.image.ready


def test_discard_deletes_the_job_and_leaves_the_record_failed():
    item = upload(images.truncated(images.jpeg((320, 240)), keep=0.3))
    run_next()
    queue.discard(Job.objects.get())
    assert Job.objects.count() == 0
    item.refresh_from_db()
    assert item.image.failed


def test_job_of_a_worker_killed_after_publishing_finishes_without_failing_the_record():
    item = upload()
    job = queue.claim("killed-worker")
    assert processing.process(job) is processing.Outcome.READY
    # The worker died here, before deleting its job; the lock expires and
    # another worker runs it again, with the staged original long gone.
    queue.release(job)
    Job.objects.update(max_attempts=1)
    assert run_next() is processing.Outcome.READY
    item.refresh_from_db()
    assert item.image.ready


def test_a_late_final_failure_never_marks_a_published_record_failed():
    item = upload()
    job = queue.claim("w")
    processing.process(job)
    processing.mark_failed(job, RuntimeError("reported late"))
    item.refresh_from_db()
    assert item.image.ready


def test_retry_of_a_job_kept_failed_after_publishing_leaves_the_record_ready():
    # Its worker was lost after publishing, on the last attempt: the job is
    # kept as failed, and retrying it must not show placeholders again.
    item = upload()
    job = queue.claim("lost-worker")
    assert processing.process(job) is processing.Outcome.READY
    Job.objects.update(locked_by="", locked_at=None, failed_at=timezone.now())
    assert processing.retry(Job.objects.get())
    item.refresh_from_db()
    assert item.image.ready
    assert run_next() is processing.Outcome.READY
    item.refresh_from_db()
    assert item.image.ready


def test_retry_of_a_job_that_is_gone_leaves_the_record_alone():
    item = upload()
    job = queue.claim("w")
    processing.process(job)
    queue.complete("w", [job.pk])
    assert processing.retry(job) is False
    item.refresh_from_db()
    assert item.image.ready


def test_a_job_handed_back_while_it_ran_publishes_nothing_and_keeps_its_original():
    """The shutdown timeout hands a running job back; the thread still running it must not
    publish, or the next worker would find the record moved under a job it was given."""
    item = upload()
    job = queue.claim("w1")
    assert job is not None
    queue.release(job)  # what the worker's main thread does when SHUTDOWN_TIMEOUT passes
    assert processing.run(job) is processing.Outcome.HANDED_BACK
    item.refresh_from_db()
    assert item.image.processing
    assert storage.staging_storage().exists(item.image.name)
    again = queue.claim("w2")
    assert again is not None
    assert again.pk == job.pk
    assert processing.run(again) is processing.Outcome.READY
    item.refresh_from_db()
    assert item.image.ready


class Barrier:
    """A processor that holds the job between the preview's publishing and the styles."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()

    def __call__(self, image):  # type: ignore[no-untyped-def]
        self.reached.set()
        assert self.release.wait(30), "the test never let the job go on"
        return image


@pytest.fixture
def held_at_the_first_style(monkeypatch) -> Barrier:
    """Item's styles, with one made first whose processor waits for the test."""
    barrier = Barrier()
    field = Item._meta.get_field("image")
    held = Style("held", parse_geometry("10x10"), processors=(Processor.of(barrier),))
    monkeypatch.setattr(field, "styles", {"held": held, **field.styles})
    return barrier


@pytest.mark.django_db(transaction=True)
def test_the_worker_publishes_the_preview_before_making_any_style(held_at_the_first_style):
    item = upload(images.jpeg((1600, 1200)))  # no embedded thumbnail: the worker makes it
    assert plan.preview(item.image_styles) is None
    outcomes = []

    def job() -> None:
        try:
            outcomes.append(run_next())
        finally:
            connection.close()

    worker = threading.Thread(target=job)
    worker.start()
    try:
        assert held_at_the_first_style.reached.wait(30)
        item.refresh_from_db()
        # Published while no style is made yet, and the record still processing.
        assert item.image_state == "processing"
        assert plan.made(item.image_styles) == {}
        preview = plan.preview(item.image_styles)
        assert preview
        assert preview.startswith("data:image/webp;base64,")
        assert storage.version_files(item.image.storage, item.image.name) == []  # nothing written
    finally:
        held_at_the_first_style.release.set()
        worker.join(30)
    assert outcomes == [processing.Outcome.READY]
    item.refresh_from_db()
    assert item.image_state == "ready"
    assert set(plan.made(item.image_styles)) == {"held", "thumb", "square"}
    assert plan.preview(item.image_styles) == preview  # kept, harmless once ready


def test_the_worker_keeps_the_preview_the_request_made():
    item = upload(images.jpeg_with_thumbnail((640, 480)))
    preview = plan.preview(item.image_styles)
    assert preview
    assert run_next() is processing.Outcome.READY
    item.refresh_from_db()
    assert plan.preview(item.image_styles) == preview


def test_a_preview_never_lands_on_a_newer_upload():
    item = upload(images.jpeg((640, 480)))
    job = Job.objects.get()
    item.image.save("b.jpg", ContentFile(images.jpeg((320, 240))))
    assert not processing.publish_preview(
        Item._meta.get_field("image"), job, "data:image/webp;base64,AA"
    )
    item.refresh_from_db()
    assert plan.preview(item.image_styles) is None


def test_processing_in_the_request_publishes_no_preview(django_capture_on_commit_callbacks):
    avatar = Avatar()  # process_in_background=False: no page waits for it
    with django_capture_on_commit_callbacks(execute=True):
        avatar.image.save("a.jpg", ContentFile(images.jpeg((320, 240))))
    avatar.refresh_from_db()
    assert avatar.image_state == "ready"
    assert plan.preview(avatar.image_styles) is None
