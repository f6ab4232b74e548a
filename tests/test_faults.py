"""Faults: workers killed, uploads replaced or deleted under running jobs, the
database dropping connections, a full staging disk. Real processes throughout.

Whatever happens, no record may point at a file that does not exist, no record
may end with styles of another upload, and no staged original may be lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import connection
from PIL import Image

from attachments import storage
from attachments.exceptions import StagingFailed
from attachments.models import Job
from attachments.storage import staging_storage
from demo_site.models import Item
from tests import images

# Fast recovery of killed workers' jobs, fast retries.
FAST = {"HEARTBEAT_INTERVAL": 0.2, "LOCK_TIMEOUT": 1, "BACKOFF_SCALE": 0.01}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def published_files(media: Path) -> set[str]:
    return {str(path.relative_to(media)) for path in media.rglob("*") if path.is_file()}


def staged_files(media: Path) -> set[str]:
    root = Path(staging_storage().location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def empty_folders(media: Path) -> set[Path]:
    """Upload folders left behind with nothing in them, published or staged."""
    roots = (media, Path(staging_storage().location))
    return {
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_dir() and storage.is_version_folder(p.name) and not any(p.iterdir())
    }


def assert_consistent(media: Path) -> None:
    """Every record points at files that exist, and nothing else is left behind."""
    expected: set[str] = set()
    for item in Item.objects.all():
        assert item.image.ready, (item.pk, item.image.state)
        names = [item.image.name, *(s.name for s in item.image.styles.values())]
        expected.update(names)
    assert published_files(media) == expected
    assert staged_files(media) == set()
    assert empty_folders(media) == set()
    assert Job.objects.count() == 0


def colour_of(item: Item, style: str) -> tuple[int, ...]:
    style_file = item.image.styles[style]
    with style_file.storage.open(style_file.name) as fp:
        return Image.open(fp).convert("RGB").getpixel((5, 5))


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel on disk."""
    import io

    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(3 * size[0] * size[1])).save(buffer, "PNG")
    return buffer.getvalue()


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (900, 700)) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_kill_9_at_random_points_loses_nothing(start_worker, media):
    """Six workers are killed at random moments; a last one finishes every job."""
    for i in range(12):
        item = Item(title=str(i))
        item.image.save(f"{i}.png", ContentFile(images.png((1200, 900), mode="RGBA")))
    rng = random.Random(os.getpid())
    for _ in range(6):
        worker = start_worker("--poll-interval", "0.05", settings=FAST)
        time.sleep(rng.uniform(0.3, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # Whatever was half done, records only ever point at files that exist.
        for item in Item.objects.filter(image_state="ready"):
            assert item.image.storage.exists(item.image.name)
        for item in Item.objects.filter(image_state="processing"):
            assert staging_storage().exists(item.image.name)
    # Burst workers recover the dead workers' jobs once their locks expire and
    # run whatever is due; recovered jobs wait out a short backoff in between.
    deadline = time.monotonic() + 120
    while Job.objects.exists() or Item.objects.exclude(image_state="ready").exists():
        assert time.monotonic() < deadline, "timed out waiting for every job to finish"
        assert start_worker("--burst", settings=FAST).wait(timeout=60) == 0
        time.sleep(0.3)
    assert Item.objects.count() == 12
    assert_consistent(media)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reuploads_while_jobs_are_pending_or_running_end_with_the_newest(start_worker, media):
    item = Item(title="storm")
    item.image.save("0.png", ContentFile(solid_png((0, 0, 0))))
    worker = start_worker("--poll-interval", "0.02", settings=FAST)
    rng = random.Random(7)
    colours = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(15)]
    for colour in colours:
        time.sleep(rng.uniform(0, 0.25))
        item = Item.objects.get(pk=item.pk)
        item.image.save("again.png", ContentFile(solid_png(colour)))
    newest = item.image.name
    wait_for(
        lambda: Item.objects.get(pk=item.pk).image.ready and not Job.objects.exists(),
        60,
        "the newest upload",
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    item = Item.objects.get(pk=item.pk)
    assert item.image.name == newest
    for style in ("thumb", "square"):
        assert colour_of(item, style) == colours[-1]
    assert_consistent(media)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_deleting_the_record_under_a_running_job(start_worker, media):
    item = Item(title="doomed")
    item.image.save("big.png", ContentFile(images.png((3000, 2200), mode="RGBA")))
    worker = start_worker("--poll-interval", "0.02", settings=FAST)
    wait_for(lambda: Job.objects.filter(locked_by__gt="").exists(), 30, "the job to start")
    item.delete()
    wait_for(lambda: not Job.objects.exists(), 60, "the job to end")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert published_files(media) == set()
    assert staged_files(media) == set()
    assert empty_folders(media) == set()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_survives_its_database_connections_being_killed(start_worker, media):
    if connection.vendor != "postgresql":
        pytest.skip("terminating server connections is a PostgreSQL fault")

    def kill_other_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    worker = start_worker("--poll-interval", "0.05", settings=FAST)
    wait_for(lambda: kill_other_connections() >= 2, 30, "the worker to connect and LISTEN")
    # Idle: the next upload must still be picked up.
    first = Item(title="after idle drop")
    first.image.save("a.png", ContentFile(images.png((300, 200))))
    wait_for(lambda: Item.objects.get(pk=first.pk).image.ready, 30, "the worker to reconnect")
    # Mid-job: the job is handed back or recovered, and finishes.
    second = Item(title="mid-job drop")
    second.image.save("b.png", ContentFile(images.png((3000, 2200), mode="RGBA")))
    wait_for(lambda: Job.objects.filter(locked_by__gt="").exists(), 30, "the job to start")
    kill_other_connections()
    wait_for(lambda: Item.objects.get(pk=second.pk).image.ready, 60, "the job to finish")
    assert worker.poll() is None, "the worker died"
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    wait_for(lambda: not Job.objects.exists(), 10, "the queue to empty")
    assert_consistent(media)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB file system, really full when written past that."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        # Mounting needs root, as CI runs.
        message = f"needs root to mount a small tmpfs: {done.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.django_db
def test_full_staging_disk_is_a_clear_error_and_leaves_nothing(settings, tiny_disk):
    settings.STORAGES = {
        **settings.STORAGES,
        "staging": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tiny_disk)},
        },
    }
    settings.ATTACHMENTS = {"STAGING_STORAGE": "staging"}
    item = Item(title="too big for the disk")
    with pytest.raises(StagingFailed, match="could not be stored: No space left on device"):
        item.image.save("big.png", ContentFile(noise_png((200, 200))))
    assert [p for p in tiny_disk.rglob("*") if p.is_file()] == []
    assert Item.objects.count() == 0
    assert Job.objects.count() == 0
    # A small upload still fits afterwards: nothing half-written holds the space.
    item.image.save("small.png", ContentFile(images.png((8, 8))))
    assert FileSystemStorage(location=str(tiny_disk)).exists(item.image.name)
