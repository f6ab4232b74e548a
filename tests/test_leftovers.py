"""Staged files whose save never committed are deleted; nothing a record or job names ever is."""

from __future__ import annotations

import os
import posixpath
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from attachments import leftovers, storage
from attachments.models import Job
from attachments.worker import Worker
from demo_site.models import Item
from tests import images

pytestmark = pytest.mark.django_db

GRACE = timedelta(hours=24)
OLD = timedelta(hours=25)


class RolledBack(Exception):
    pass


def staged_path(name: str) -> Path:
    return Path(storage.staging_storage().path(name))


def age(name: str, by: timedelta = OLD) -> None:
    """Make a staged file (and its folder) look ``by`` old."""
    then = time.time() - by.total_seconds()
    path = staged_path(name)
    os.utime(path, (then, then))
    os.utime(path.parent, (then, then))


def rolled_back_upload() -> str:
    """Stage an upload in a save whose transaction rolls back; return its staged name."""
    item = Item(title="never saved")
    try:
        with transaction.atomic():
            item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
            raise RolledBack
    except RolledBack:
        pass
    assert not Item.objects.filter(pk=item.pk).exists()
    assert not Job.objects.filter(source=item.image.name).exists()
    return item.image.name


def committed_upload(title: str = "kept") -> Item:
    item = Item(title=title)
    item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
    return item


def test_a_rolled_back_uploads_file_and_folder_go_after_the_grace_period():
    name = rolled_back_upload()
    assert staged_path(name).exists()  # what the sweep is for
    age(name)
    assert leftovers.sweep(GRACE) == 1
    assert not staged_path(name).exists()
    assert not staged_path(name).parent.exists()
    # upload_to's folder is shared with uploads arriving meanwhile.
    assert staged_path(name).parent.parent.is_dir()


def test_a_recent_leftover_waits_for_the_grace_period():
    name = rolled_back_upload()
    age(name, GRACE - timedelta(minutes=5))
    assert leftovers.sweep(GRACE) == 0
    assert staged_path(name).exists()


@pytest.mark.parametrize("state", ["processing", "failed", "ready"])
def test_a_file_a_record_names_is_kept_whatever_its_state(state):
    item = committed_upload()
    Item.objects.filter(pk=item.pk).update(image_state=state)
    Job.objects.all().delete()
    age(item.image.name)
    assert leftovers.sweep(GRACE) == 0
    assert staged_path(item.image.name).exists()


def test_a_file_only_a_job_names_is_kept():
    item = committed_upload()
    # The record moved on behind the app's back; its job still names the file.
    Item.objects.filter(pk=item.pk).update(image="elsewhere.jpg")
    age(item.image.name)
    assert leftovers.sweep(GRACE) == 0
    assert staged_path(item.image.name).exists()


def test_a_version_a_job_is_to_replace_is_kept():
    old = rolled_back_upload()
    committed_upload()
    Job.objects.update(previous=f"{old}\n")
    age(old)
    assert leftovers.sweep(GRACE) == 0
    assert staged_path(old).exists()


def test_only_the_leftovers_go_among_many():
    leftover = [rolled_back_upload() for _ in range(3)]
    kept = [committed_upload(f"kept {i}") for i in range(3)]
    for name in [*leftover, *(item.image.name for item in kept)]:
        age(name)
    assert leftovers.sweep(GRACE) == 3
    assert not any(staged_path(name).exists() for name in leftover)
    assert all(staged_path(item.image.name).exists() for item in kept)


def test_files_outside_upload_folders_are_never_touched():
    staged = storage.staging_storage()
    staged.save("notes/readme.txt", ContentFile(b"mine"))
    age("notes/readme.txt")
    assert leftovers.sweep(GRACE) == 0
    assert staged.exists("notes/readme.txt")


def test_empty_upload_folders_left_behind_are_removed():
    name = rolled_back_upload()
    staged_path(name).unlink()  # as by a process killed between the file and its folder
    age_folder = time.time() - OLD.total_seconds()
    os.utime(staged_path(name).parent, (age_folder, age_folder))
    leftovers.sweep(GRACE)
    assert not staged_path(name).parent.exists()


def test_the_sweep_refuses_a_staging_folder_that_holds_media_root(settings, media, caplog):
    settings.ATTACHMENTS = {"STAGING_ROOT": str(media.parent)}
    published = media / "photos" / ("a" * 32) / "a.jpg"  # named by no record as staged
    published.parent.mkdir(parents=True)
    published.write_bytes(b"x")
    then = time.time() - OLD.total_seconds()
    os.utime(published, (then, then))
    assert leftovers.sweep(GRACE) == 0
    assert published.exists()
    assert "attachments.E130" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_upload_whose_save_is_being_committed_is_never_taken():
    """A save in flight on another connection: its record is not visible yet."""
    staged, sweep_done = threading.Event(), threading.Event()
    names: list[str] = []

    def save_slowly() -> None:
        with transaction.atomic():
            item = Item(title="in flight")
            item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))))
            names.append(item.image.name)
            staged.set()
            assert sweep_done.wait(30)

    saver = threading.Thread(target=save_slowly)
    saver.start()
    try:
        assert staged.wait(30)
        assert not Item.objects.filter(image=names[0]).exists()  # nothing names it yet
        assert leftovers.sweep(GRACE) == 0
    finally:
        sweep_done.set()
        saver.join()
    assert staged_path(names[0]).exists()
    assert Item.objects.get(image=names[0]).image.processing


def test_the_worker_sweeps_when_it_starts():
    name = rolled_back_upload()
    age(name)
    item = committed_upload()
    assert Worker(burst=True).run().processed == 1
    assert not staged_path(name).exists()
    item.refresh_from_db()
    assert item.image.ready


def test_no_sweep_without_a_grace_period(settings):
    settings.ATTACHMENTS = {"LEFTOVER_GRACE": None}
    name = rolled_back_upload()
    age(name, timedelta(days=365))
    Worker(burst=True).run()
    assert staged_path(name).exists()


def test_a_failing_sweep_never_stops_the_worker(monkeypatch):
    def broken(older_than):
        raise RuntimeError("storage backend says no")

    monkeypatch.setattr(leftovers, "sweep", broken)
    item = committed_upload()
    assert Worker(burst=True).run().processed == 1
    item.refresh_from_db()
    assert item.image.ready


def test_publishing_and_deleting_leave_no_empty_folder(media, django_capture_on_commit_callbacks):
    item = committed_upload()
    folder = posixpath.dirname(item.image.name)
    Worker(burst=True).run()
    assert not staged_path(item.image.name).parent.exists()
    item.refresh_from_db()
    assert (media / folder).is_dir()
    with django_capture_on_commit_callbacks(execute=True):
        item.delete()
    assert not (media / folder).exists()
