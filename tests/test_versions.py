"""Concurrent saves of one record, without a transaction, keep every promise.

Whatever the interleaving of saves, clears, deletes and workers, the record
points at files that exist, ends at an upload with that upload's own styles,
and every version it no longer points at is deleted. Interleavings are forced:
one save is paused after each of its statements in turn while another save (or
a worker) runs to the end, so every boundary between two statements is tried.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models, transaction
from django.test.utils import isolate_apps
from PIL import Image

from attachments import AttachmentField, leftovers, orphans, queue, storage, versions
from attachments.models import Job
from demo_site.models import Item
from tests.conftest import ROOT, child_environ
from tests.uploads import work

pytestmark = pytest.mark.django_db(transaction=True)

RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)


def png(colour: tuple[int, int, int]) -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(buffer, "PNG")
    return ContentFile(buffer.getvalue())


def files_under(root: str) -> set[str]:
    base = Path(root)
    return (
        {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}
        if base.exists()
        else set()
    )


def colour_of(item: Item, style: str) -> tuple[int, ...]:
    style_file = item.image.styles[style]
    with style_file.storage.open(style_file.name) as fp:
        return Image.open(fp).convert("RGB").getpixel((5, 5))


def assert_settled(colours: dict[str, tuple[int, int, int]]) -> None:
    """After the worker drained: every record ready with its own styles, nothing else kept."""
    staged = storage.staging_storage()
    expected: set[str] = set()
    for item in Item.objects.all():
        if not item.image:
            assert item.image_state == ""
            continue
        assert item.image.ready, (item.pk, item.image.state)
        names = [item.image.name, *(s.name for s in item.image.styles.values())]
        assert all(item.image.storage.exists(name) for name in names)
        expected.update(names)
        for style in item.image.styles:
            assert colour_of(item, style) == colours[item.image.name], style
    media = Item._meta.get_field("image").storage.location
    published = {name for name in files_under(media) if not name.startswith("attachments-")}
    assert published == expected
    assert files_under(staged.location) == set()
    assert not Job.objects.exists()


class Uploads:
    """Uploads of solid colours, remembering which name holds which colour."""

    def __init__(self) -> None:
        self.colours: dict[str, tuple[int, int, int]] = {}

    def published(self, colour: tuple[int, int, int]) -> Item:
        """A record whose upload of ``colour`` the worker has published."""
        item = Item.objects.create(title="race")
        self.save(item.pk, colour)
        work()
        return item

    def save(self, pk: int, colour: tuple[int, int, int], item: Item | None = None) -> None:
        item = item or Item.objects.get(pk=pk)
        item.image.save("x.png", png(colour), save=False)
        # Before the save: afterwards the instance may show a newer upload's name.
        self.colours[item.image.name] = colour
        item.save()


@contextmanager
def paused_after(statement: int, other: Callable[[], None]) -> Iterator[None]:
    """Run ``other`` once, between the ``statement``-th statement and the next one.

    Boundaries inside a transaction are passed over: another process would
    wait for its locks, so its effect is the same as running after the commit.
    ``other`` runs before the next statement starts, once the one before it is
    done with (SQLite cannot commit while a statement is in progress).
    """
    seen = 0
    done = False

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal seen, done
        if not done and seen >= statement and not connection.in_atomic_block:
            done = True
            other()
        if not sql.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            seen += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    if not done:
        other()  # the save had no more statements: the last boundary is its end


BOUNDARIES = range(10)


@pytest.mark.parametrize("statement", BOUNDARIES)
@pytest.mark.parametrize("then_work", [False, True], ids=["waiting", "published"])
def test_a_save_racing_another_save_keeps_every_promise(statement, then_work):
    """(a) and (b): B's whole save, and maybe its job, run between two statements of A's.

    With B published in between, this is also (a) seen from the other side: a
    save that read the record before another upload was published.
    """
    uploads = Uploads()
    item = uploads.published(BLACK)
    a = Item.objects.get(pk=item.pk)

    def b_saves() -> None:
        uploads.save(item.pk, BLUE)
        if then_work:
            work()

    with paused_after(statement, b_saves):
        uploads.save(item.pk, RED, a)
    work()
    assert_settled(uploads.colours)


@pytest.mark.parametrize("statement", BOUNDARIES)
@pytest.mark.parametrize("other", ["clear", "delete"])
def test_an_upload_racing_a_clear_or_a_delete(statement, other):
    uploads = Uploads()
    item = uploads.published(BLACK)
    a = Item.objects.get(pk=item.pk)

    def b_acts() -> None:
        b = Item.objects.filter(pk=item.pk).first()
        if b is None:
            return
        if other == "clear":
            b.image.delete()
        else:
            b.delete()

    with paused_after(statement, b_acts):
        uploads.save(item.pk, RED, a)
    work()
    assert_settled(uploads.colours)


def test_a_plain_save_of_a_stale_instance_never_writes_an_older_version_back():
    uploads = Uploads()
    item = Item.objects.create(title="stale")
    uploads.save(item.pk, BLACK)
    stale = Item.objects.get(pk=item.pk)  # processing, version BLACK
    work()
    uploads.save(item.pk, RED)
    work()
    stale.title = "edited"
    stale.save()
    item.refresh_from_db()
    assert item.title == "edited"
    assert item.image.ready
    assert uploads.colours[item.image.name] == RED
    assert_settled(uploads.colours)


def test_deleting_a_stale_instance_deletes_the_version_the_row_holds():
    uploads = Uploads()
    item = uploads.published(BLACK)
    stale = Item.objects.get(pk=item.pk)
    uploads.save(item.pk, RED)
    work()
    stale.delete()
    assert not Item.objects.exists()
    assert_settled(uploads.colours)  # nothing published is left


class Killed(BaseException):
    """The web process dying where it is."""


def die(**kwargs: object) -> None:
    raise Killed


def remove_the_one_leftover() -> None:
    """What a dead process staged is nobody's: housekeeping's to remove."""
    assert orphans.requeue(timedelta(0)) == 0
    staged = storage.staging_storage()
    leftovers = files_under(staged.location)
    assert len(leftovers) == 1
    staged.delete(leftovers.pop())


def test_a_reupload_killed_before_its_job_leaves_no_orphan_and_no_old_version(monkeypatch):
    """(c): a web process dying between the record's and the job's commits."""
    uploads = Uploads()
    item = uploads.published(BLACK)
    monkeypatch.setattr(queue, "enqueue", die)
    with pytest.raises(Killed):
        uploads.save(item.pk, RED)
    monkeypatch.undo()
    # The record and the job commit together: the record still shows what it had.
    item.refresh_from_db()
    assert item.image.ready
    assert uploads.colours[item.image.name] == BLACK
    remove_the_one_leftover()
    assert_settled({name: c for name, c in uploads.colours.items() if c == BLACK})


@pytest.mark.parametrize("staged", [True, False], ids=["file-saved-first", "form-assigned"])
def test_a_new_record_killed_before_its_job_is_not_saved_at_all(monkeypatch, staged):
    """Outside a transaction too, a new record's INSERT commits with its job, or not at all."""
    item = Item(title="new")
    if staged:
        item.image.save("x.png", png(RED), save=False)
    else:  # as a ModelForm does: the upload is staged by the save
        item.image = SimpleUploadedFile("x.png", png(RED).read())
    monkeypatch.setattr(queue, "enqueue", die)
    with pytest.raises(Killed):
        item.save()
    monkeypatch.undo()
    assert not Item.objects.exists()
    remove_the_one_leftover()
    assert_settled({})


@pytest.mark.slow
def test_processes_saving_at_random_beside_workers_keep_every_promise(start_worker, media):
    """Four web processes re-upload, edit, clear and delete three records while two workers run."""
    pks = ",".join(str(Item.objects.create(title=str(i)).pk) for i in range(3))
    fast = {"HEARTBEAT_INTERVAL": 0.2, "LOCK_TIMEOUT": 5, "BACKOFF_SCALE": 0.01}
    workers = [start_worker("--poll-interval", "0.02", settings=fast) for _ in range(2)]
    savers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.tools.save_at_random", str(seed), pks, "40"],
            cwd=ROOT,
            env=child_environ(media),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    colours: dict[str, tuple[int, int, int]] = {}
    for saver in savers:
        out, err = saver.communicate(timeout=300)
        assert saver.returncode == 0, err
        for line in out.splitlines():
            upload = json.loads(line)
            colours[upload["name"]] = tuple(upload["colour"])
    assert len(colours) > 20
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    assert start_worker("--burst", settings=fast).wait(timeout=120) == 0
    # A save that lost a race to insert a deleted record again staged its upload for nothing.
    leftovers.sweep(timedelta(0))
    assert_settled(colours)


@isolate_apps("tests.testapp")
def test_the_row_lock_reads_the_name_whatever_the_primary_key_and_columns():
    """A UUID key, and a child model whose field has a column name of its own."""

    class Thing(models.Model):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4)
        image = AttachmentField(upload_to="things", styles={"thumb": "10x10"}, blank=True)

        class Meta:
            app_label = "testapp"

    class Parent(models.Model):
        title = models.CharField(max_length=10, default="")

        class Meta:
            app_label = "testapp"

    class Child(Parent):
        image = AttachmentField(upload_to="children", db_column="picture", blank=True)

        class Meta:
            app_label = "testapp"

    thing_field, child_field = Thing._meta.get_field("image"), Child._meta.get_field("image")
    with connection.schema_editor() as editor:
        for model in (Thing, Parent, Child):
            editor.create_model(model)
    try:
        thing = Thing.objects.create(image="things/a/1.jpg", image_state="ready")
        child = Child.objects.create(image="children/b/2.jpg", image_state="ready")
        with transaction.atomic():
            assert versions.lock(thing_field, str(thing.pk), "default") == "things/a/1.jpg"
            assert versions.lock(thing_field, str(uuid.uuid4()), "default") is None
            assert versions.lock(child_field, str(child.pk), "default") == "children/b/2.jpg"
    finally:
        with connection.schema_editor() as editor:
            for model in (Child, Parent, Thing):
                editor.delete_model(model)


def halves() -> ContentFile:
    """Left half red, right half blue: a crop's cut is plain in its colours."""
    im = Image.new("RGB", (400, 200), RED)
    im.paste(BLUE, (200, 0, 400, 200))
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return ContentFile(buffer.getvalue(), name="halves.png")


def ready_halves() -> Item:
    item = Item(title="halves")
    item.image.save("halves.png", halves())
    work()
    return Item.objects.get(pk=item.pk)


def move_focus(pk: int, point: tuple[float, float]) -> None:
    item = Item.objects.get(pk=pk)
    item.image.focus = point
    item.save()


def test_moving_the_focus_remakes_the_crops_and_leaves_every_other_file_alone(media):
    item = ready_halves()
    square, thumb, original = (
        media / item.image.styles["square"].name,
        media / item.image.styles["thumb"].name,
        media / item.image.name,
    )
    untouched = {path: path.stat().st_mtime_ns for path in (thumb, original)}
    move_focus(item.pk, (0.95, 0.5))
    assert Job.objects.get().source == item.image.name
    assert square.exists()  # served until the record names the new one
    work()
    item = Item.objects.get(pk=item.pk)
    assert {path: path.stat().st_mtime_ns for path in untouched} == untouched
    assert item.image.styles["thumb"].name == str(thumb.relative_to(media))
    new_square = media / item.image.styles["square"].name
    assert new_square != square
    assert new_square.exists()
    assert not square.exists()
    assert colour_of(item, "square") == BLUE
    assert not Job.objects.exists()


def test_a_focus_chosen_on_an_image_the_record_no_longer_shows_is_dropped():
    item = ready_halves()
    stale = Item.objects.get(pk=item.pk)
    item.image.save("new.png", halves())
    stale.image.focus = (0.95, 0.5)
    stale.save()
    item = Item.objects.get(pk=item.pk)
    assert item.image.name.endswith("/new.png")
    assert item.image.focus is None
    assert Job.objects.get().source == item.image.name  # the upload's, nothing else


def test_a_focus_rolled_back_queues_nothing():
    from django.db import transaction

    item = ready_halves()
    queued = []

    def save_then_fail() -> None:
        with transaction.atomic():
            move_focus(item.pk, (0.95, 0.5))
            queued.append(Job.objects.count())
            raise RuntimeError("the rest of the save failed")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert queued == [1]
    assert Item.objects.get(pk=item.pk).image.focus is None
    assert not Job.objects.exists()


def test_a_re_upload_during_the_focus_job_wins(media, monkeypatch):
    from attachments import renditions

    item = ready_halves()
    old_version = media / Path(item.image.name).parent
    move_focus(item.pk, (0.95, 0.5))
    real_make, written = renditions.make, []

    def make_then_reupload(*args, **kwargs):
        made = real_make(*args, **kwargs)
        if not written:  # only in the focus job, not in the new upload's
            written.extend(made.written)
            Item.objects.get(pk=item.pk).image.save("new.png", png(GREEN))
        return made

    monkeypatch.setattr(renditions, "make", make_then_reupload)
    work()
    item = Item.objects.get(pk=item.pk)
    assert item.image.name.endswith("/new.png")
    assert item.image.ready
    assert item.image.focus is None
    assert colour_of(item, "square") == GREEN
    assert written
    assert not any((media / name).exists() for name in written)
    assert not old_version.exists() or not any(old_version.iterdir())
    assert not Job.objects.exists()


def test_a_focus_moved_while_the_upload_job_runs_goes_round_once_more(monkeypatch):
    from attachments import renditions

    item = Item(title="halves")
    item.image.save("halves.png", halves())
    real_make, runs = renditions.make, []

    def make_and_move_the_focus(*args, **kwargs):
        made = real_make(*args, **kwargs)
        runs.append(kwargs["focus"])
        if len(runs) == 1:  # the record is still processing: no job of its own
            move_focus(item.pk, (0.95, 0.5))
            assert Job.objects.count() == 1
        return made

    monkeypatch.setattr(renditions, "make", make_and_move_the_focus)
    work()
    assert runs == [None, (0.95, 0.5)]
    item = Item.objects.get(pk=item.pk)
    assert colour_of(item, "square") == BLUE
    assert not Item._meta.get_field("image").due(item.image_styles)
    assert not Job.objects.exists()


@pytest.mark.parametrize("statement", BOUNDARIES)
@pytest.mark.parametrize("then_work", [False, True], ids=["waiting", "published"])
@pytest.mark.parametrize("paused", ["focus", "upload"])
def test_a_focus_racing_an_upload_keeps_every_promise(statement, then_work, paused):
    """A focus save and a re-upload, either between two statements of the other.

    Whatever the order, the record ends at the newest upload with every style
    made for the focus it holds, and no file of a crop or version it left behind.
    """
    uploads = Uploads()
    item = uploads.published(BLACK)
    a = Item.objects.get(pk=item.pk)

    def upload_blue() -> None:
        uploads.save(item.pk, BLUE)
        if then_work:
            work()

    def focus_right() -> None:
        move_focus(item.pk, (0.9, 0.1))
        if then_work:
            work()

    if paused == "focus":
        a.image.focus = (0.9, 0.1)
        with paused_after(statement, upload_blue):
            a.save()
    else:
        with paused_after(statement, focus_right):
            uploads.save(item.pk, RED, a)
    work()
    assert_settled(uploads.colours)
    item = Item.objects.get(pk=item.pk)
    assert not Item._meta.get_field("image").due(item.image_styles)
