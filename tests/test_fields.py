"""The field's public API and the upload path, as a Django developer uses them."""

from __future__ import annotations

import re

import pytest
from django.core import checks
from django.core.files.base import ContentFile
from django.db import models
from PIL import Image, ImageStat

from attachments import AttachmentField
from attachments.exceptions import InvalidImage
from attachments.models import Job
from attachments.storage import staging_storage
from demo_site.forms import ItemForm
from demo_site.models import Item
from tests import images
from tests.testapp.models import Avatar, Photo
from tests.uploads import work

pytestmark = pytest.mark.django_db

PLACEHOLDER = "/static/attachments/processing.svg"


def upload(title: str = "cat", data: bytes | None = None, name: str = "cat.jpg") -> Item:
    item = Item(title=title)
    item.image.save(name, ContentFile(data or images.jpeg((640, 480))), save=False)
    item.save()
    return item


def pixel_size(file) -> tuple[int, int]:
    with file.storage.open(file.name) as fp:
        return Image.open(fp).size


def test_item_without_image_has_no_state():
    item = Item.objects.create(title="empty")
    assert item.image.state == ""
    assert not item.image.processing
    assert Job.objects.count() == 0


def test_upload_is_staged_marked_processing_and_enqueued_once(django_assert_max_num_queries):
    item = upload()
    assert item.image.state == "processing"
    assert item.image.processing
    assert staging_storage().exists(item.image.name)
    assert not item.image.storage.exists(item.image.name)
    job = Job.objects.get()
    assert (job.target, job.object_id, job.source) == (
        "demo_site.item.image",
        str(item.pk),
        item.image.name,
    )
    # State lives on the record: a fresh instance knows it without another query.
    fresh = Item.objects.get(pk=item.pk)
    with django_assert_max_num_queries(0):
        assert fresh.image.state == "processing"


def test_upload_name_is_unique_sanitised_and_named_by_content():
    png = images.png((20, 10))
    first = upload(data=png, name="../../etc/My Holiday Photo!!.jpg")
    second = upload(data=png, name="../../etc/My Holiday Photo!!.jpg")
    assert first.image.name.startswith("items/")
    assert first.image.name.endswith("/my-holiday-photo.png")
    assert ".." not in first.image.name
    assert first.image.name != second.image.name


def test_every_url_is_the_placeholder_while_processing(settings):
    item = upload()
    assert item.image.url == PLACEHOLDER
    assert item.image.styles["thumb"].url == PLACEHOLDER
    assert item.image.style_url("square") == PLACEHOLDER
    settings.ATTACHMENTS = {"PROCESSING_URL": "/wait.gif"}
    assert item.image.styles["square"].url == "/wait.gif"


def test_field_placeholder_overrides_setting(settings):
    settings.ATTACHMENTS = {"PROCESSING_URL": "/global.gif"}
    field = AttachmentField(processing_url="/field.gif")
    assert field.placeholder_url == "/field.gif"


def test_a_failed_attachment_shows_the_failed_placeholder_not_the_processing_one(settings):
    item = upload(data=images.truncated(images.jpeg((320, 240)), keep=0.3))
    work()
    item.refresh_from_db()
    assert item.image.failed
    failed = "/static/attachments/failed.svg"
    assert item.image.url == failed
    assert item.image.style_url("square") == failed
    assert item.image.styles["thumb"].url == failed
    settings.ATTACHMENTS = {"FAILED_URL": "/broken.png"}
    assert item.image.url == "/broken.png"
    field = AttachmentField(failed_url="/field-broken.png")
    assert field.failed_placeholder_url == "/field-broken.png"


def test_worker_makes_every_style_and_publishes():
    item = upload()
    assert work().startswith("1 job processed, 0 failed; ")
    item.refresh_from_db()
    assert item.image.state == "ready"
    assert item.image.url == f"/media/{item.image.name}"
    assert pixel_size(item.image) == (640, 480)
    thumb, square = item.image.styles["thumb"], item.image.styles["square"]
    assert thumb.url == f"/media/{thumb.name}"
    assert pixel_size(thumb) == (100, 75)
    assert pixel_size(square) == (200, 200)
    assert not staging_storage().exists(item.image.name)
    assert Job.objects.count() == 0


def test_template_reads_style_urls():
    from django.template import Context, Template

    item = upload()
    work()
    item.refresh_from_db()
    html = Template("{{ item.image.styles.thumb.url }}").render(Context({"item": item}))
    assert html == item.image.styles["thumb"].url


def test_style_formats_and_names():
    photo = Photo()
    photo.image.save("p.jpg", ContentFile(images.jpeg((600, 400))))
    work()
    photo.refresh_from_db()
    styles = photo.image.styles
    # <original's stem>-<style>-<fingerprint of its declaration><extension of its format>
    assert re.search(r"/p-small-[0-9a-f]{12}\.jpg$", styles["small"].name)
    assert re.search(r"/p-wide-[0-9a-f]{12}\.png$", styles["wide"].name)
    assert re.search(r"/p-preview-[0-9a-f]{12}\.webp$", styles["preview"].name)
    assert pixel_size(styles["wide"]) == (300, 100)
    with styles["preview"].storage.open(styles["preview"].name) as fp:
        assert Image.open(fp).format == "WEBP"


def test_open_reads_the_original_wherever_it_is():
    data = images.jpeg((64, 48))
    item = upload(data=data)
    with item.image.open() as fp:
        assert fp.read() == data
    work()
    item = Item.objects.get(pk=item.pk)
    with item.image.open() as fp:
        assert fp.read() == data


def test_reupload_while_pending_keeps_one_job_and_drops_the_old_staged_file(
    django_capture_on_commit_callbacks,
):
    item = upload()
    first = item.image.name
    with django_capture_on_commit_callbacks(execute=True):
        item.image.save("dog.png", ContentFile(images.png((30, 30))))
    assert Job.objects.get().source == item.image.name != first
    assert not staging_storage().exists(first)
    work()
    item.refresh_from_db()
    assert item.image.ready
    assert pixel_size(item.image.styles["square"]) == (200, 200)


def test_reupload_after_ready_deletes_the_previous_version_once_the_new_one_is_ready():
    item = upload()
    work()
    item.refresh_from_db()
    old = [item.image.name, item.image.styles["thumb"].name, item.image.styles["square"].name]
    storage = item.image.storage
    item.image.save("new.jpg", ContentFile(images.jpeg((300, 300))))
    assert all(storage.exists(name) for name in old)  # still served until the new one is ready
    work()
    item.refresh_from_db()
    assert item.image.ready
    assert not any(storage.exists(name) for name in old)
    assert pixel_size(item.image.styles["thumb"]) == (100, 100)


def test_job_of_a_superseded_upload_publishes_nothing():
    item = upload()
    stale = Job.objects.get()
    Item.objects.filter(pk=item.pk).update(image="items/other/x.jpg")
    work()
    assert not item.image.storage.exists(stale.source)
    assert not staging_storage().exists(stale.source)
    assert Job.objects.count() == 0


def test_deleting_the_record_deletes_files_and_pending_jobs(django_capture_on_commit_callbacks):
    item = upload()
    work()
    item.refresh_from_db()
    names = [item.image.name, item.image.styles["thumb"].name]
    with django_capture_on_commit_callbacks(execute=True):
        item.delete()
    assert not any(item.image.storage.exists(name) for name in names)

    pending = upload()
    with django_capture_on_commit_callbacks(execute=True):
        pending.delete()
    assert Job.objects.count() == 0
    assert not staging_storage().exists(pending.image.name)


def test_saving_a_non_image_from_code_raises():
    item = Item(title="x")
    with pytest.raises(InvalidImage):
        item.image.save("x.jpg", ContentFile(b"GIF89a but not really"))
    assert Item.objects.count() == 0


def test_process_in_background_false_processes_on_commit(django_capture_on_commit_callbacks):
    avatar = Avatar()
    with django_capture_on_commit_callbacks(execute=True):
        avatar.image.save("me.png", ContentFile(images.png((64, 40))))
    assert avatar.image.ready
    assert Job.objects.count() == 0
    avatar.refresh_from_db()
    assert avatar.image.ready
    assert pixel_size(avatar.image.styles["icon"]) == (32, 32)


def test_immediate_backend_setting_processes_every_field(
    settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENTS = {"BACKEND": "immediate"}
    with django_capture_on_commit_callbacks(execute=True):
        item = upload()
    assert item.image.ready
    assert Job.objects.count() == 0


def published_names(item: Item) -> list[str]:
    return [item.image.name, *(style.name for style in item.image.styles.values())]


def test_delete_removes_files_and_empties_the_field(django_capture_on_commit_callbacks):
    item = upload()
    work()
    item.refresh_from_db()
    names = published_names(item)
    with django_capture_on_commit_callbacks(execute=True):
        item.image.delete()
    item.refresh_from_db()
    assert not item.image
    assert item.image.state == ""
    assert not any(item.image.storage.exists(name) for name in names)


def test_delete_without_save_keeps_the_files_the_record_points_at():
    item = upload()
    work()
    item.refresh_from_db()
    names = published_names(item)
    item.image.delete(save=False)
    assert Item.objects.get(pk=item.pk).image.name == names[0]
    assert all(item.image.storage.exists(name) for name in names)


@pytest.mark.parametrize("how", ["form", "none"])
def test_clearing_the_field_deletes_its_files_on_commit(how, django_capture_on_commit_callbacks):
    item = upload()
    work()
    item.refresh_from_db()
    names = published_names(item)
    with django_capture_on_commit_callbacks() as callbacks:
        if how == "form":
            form = ItemForm({"title": "x", "image-clear": "on"}, instance=item)
            assert form.is_valid(), form.errors
            form.save()
        else:
            item.image = None
            item.save()
        # Until the save commits, the files the database still names stay.
        assert all(item.image.storage.exists(name) for name in names)
    for callback in callbacks:
        callback()
    item.refresh_from_db()
    assert (item.image.name, item.image.state) == ("", "")
    assert not any(item.image.storage.exists(name) for name in names)


def test_clearing_while_a_new_upload_waits_deletes_both_versions(
    django_capture_on_commit_callbacks,
):
    item = upload()
    work()
    item.refresh_from_db()
    old = published_names(item)
    item.image.save("new.jpg", ContentFile(images.jpeg((64, 48))))
    waiting = item.image.name
    with django_capture_on_commit_callbacks(execute=True):
        item.image = None
        item.save()
    # The waiting job would have deleted the old version once the new one was ready.
    assert Job.objects.count() == 0
    assert not staging_storage().exists(waiting)
    assert not any(item.image.storage.exists(name) for name in old)


def test_deconstruct_emits_only_non_default_options():
    # Styles, only_process and fallback change no column: editing them writes no migration.
    field = AttachmentField(
        upload_to="x", styles={"t": "10x10"}, only_process=["t"], fallback="original"
    )
    _, path, _, kwargs = field.deconstruct()
    assert path == "attachments.fields.AttachmentField"
    assert kwargs == {"upload_to": "x"}
    field = AttachmentField(
        upload_to="x",
        process_in_background=False,
        failed_url="/broken.png",
        queue="images",
        max_attempts=3,
    )
    assert field.deconstruct()[3] == {
        "upload_to": "x",
        "process_in_background": False,
        "failed_url": "/broken.png",
        "queue": "images",
        "max_attempts": 3,
    }


def _check_ids(**kwargs) -> list[str]:
    return [error.id for error in _checks(**kwargs)]


def _checks(**kwargs) -> list:
    class Model(models.Model):
        image = AttachmentField(**kwargs)

        class Meta:
            app_label = "testapp"

    try:
        return Model._meta.get_field("image").check()
    finally:
        from django.apps import apps

        del apps.all_models["testapp"]["model"]
        apps.clear_cache()


@pytest.mark.parametrize(
    ("kwargs", "error_id"),
    [
        ({"styles": {"thumb": "100xx"}}, "attachments.E001"),
        ({"styles": {"thumb": ("100x100", "bmp")}}, "attachments.E001"),
        ({"styles": {"original": "10x10"}}, "attachments.E001"),
        ({"process_in_background": "yes"}, "attachments.E002"),
        ({"max_attempts": 0}, "attachments.E003"),
        ({"styles": {"thumb": "10x10"}, "only_process": ["icon"]}, "attachments.E170"),
        ({"fallback": "placeholder"}, "attachments.E171"),
        ({"width_field": "image_width"}, "attachments.E172"),
        (
            {"styles": {"s": {"geometry": "1x1", "processors": ["attachments.processors.gray"]}}},
            "attachments.E180",
        ),
    ],
)
def test_field_checks(kwargs, error_id):
    assert error_id in _check_ids(**kwargs)


def test_a_format_this_pillow_cannot_encode_is_a_check_error(monkeypatch):
    from attachments import imaging

    avif = {"styles": {"s": ("10x10", "avif")}}
    monkeypatch.setattr(imaging, "encodes", lambda fmt: fmt != "AVIF")
    assert _check_ids(**avif) == ["attachments.E181"]
    monkeypatch.setattr(imaging, "encodes", lambda fmt: True)
    assert _check_ids(**avif) == []


def test_a_responsive_styles_formats_are_checked_too(monkeypatch):
    from attachments import imaging

    hero = {"styles": {"hero": {"widths": [320, 640], "formats": ["avif", "webp", "jpeg"]}}}
    monkeypatch.setattr(imaging, "encodes", lambda fmt: fmt != "AVIF")
    [error] = _checks(**hero)
    assert error.id == "attachments.E181"
    assert "'hero' is to be written as AVIF," in error.msg
    monkeypatch.setattr(imaging, "encodes", lambda fmt: True)
    assert _check_ids(**hero) == []


def test_valid_field_passes_checks():
    assert _check_ids(styles={"thumb": "100x100>"}) == []
    processed = {"geometry": "1x1", "processors": ["attachments.processors.grayscale"]}
    assert _check_ids(styles={"thumb": processed}) == []


def test_state_column_is_a_real_field():
    field = Item._meta.get_field("image_state")
    assert isinstance(field, models.CharField)
    assert not field.editable
    assert Item.objects.filter(image_state="processing").count() == 0
    upload()
    assert Item.objects.filter(image_state="processing").count() == 1


def test_checks_registered_ids_are_unique():
    assert checks.run_checks() == []


def test_upload_of_a_new_record_costs_no_job_lookup(django_assert_num_queries):
    item = Item(title="new")
    item.image.save("a.jpg", ContentFile(images.jpeg((64, 48))), save=False)
    # The record's INSERT and the job's (on PostgreSQL with the NOTIFY that
    # wakes workers, in the same statement): no lookup of older jobs, no savepoint.
    with django_assert_num_queries(2):
        item.save()


def test_width_and_height_fields_come_from_the_header_probe():
    photo = Photo()
    photo.image.save("p.jpg", ContentFile(images.jpeg((600, 400))))
    assert (photo.image_width, photo.image_height) == (600, 400)
    assert (photo.image.width, photo.image.height) == (600, 400)
    photo = Photo.objects.get(pk=photo.pk)
    assert (photo.image_width, photo.image_height) == (600, 400)
    photo.image.save("q.png", ContentFile(images.png((30, 20))))  # a new version, same record
    photo = Photo.objects.get(pk=photo.pk)
    assert (photo.image_width, photo.image_height, photo.image.width) == (30, 20, 30)
    photo.image.delete()
    photo = Photo.objects.get(pk=photo.pk)
    assert (photo.image_width, photo.image_height, photo.image.width) == (None, None, None)


def test_only_process_styles_are_made_in_the_request(monkeypatch):
    field = Photo._meta.get_field("image")
    monkeypatch.setattr(field, "only_process", ("small",))
    photo = Photo()
    photo.image.save("p.jpg", ContentFile(images.jpeg((600, 400))))
    assert photo.image.processing
    small = photo.image.styles["small"]
    assert small.url != field.placeholder_url  # shown on the very next page
    assert pixel_size(small) == (50, 33)
    assert photo.image.styles["wide"].url == field.placeholder_url
    photo = Photo.objects.get(pk=photo.pk)
    assert photo.image.styles["small"].name == small.name
    assert field.due(photo.image_styles) == ["wide", "preview"]
    work()
    photo = Photo.objects.get(pk=photo.pk)
    assert photo.image.styles["small"].name == small.name  # not made twice
    assert field.due(photo.image_styles) == []
    assert pixel_size(photo.image.styles["wide"]) == (300, 100)


def mean_colour(file) -> tuple[int, ...]:
    """The style's mean colour, to the nearest 8 (resampling blends the halves' seam)."""
    with file.storage.open(file.name) as fp:
        mean = ImageStat.Stat(Image.open(fp).convert("RGB")).mean
    return tuple(min(255, round(value / 8) * 8) for value in mean)


def ready(data: bytes | None = None) -> Item:
    item = upload(data=data or images.halves(), name="halves.png")
    work()
    return Item.objects.get(pk=item.pk)


def test_a_ready_record_has_no_focus_until_one_is_set():
    item = ready()
    assert item.image.focus is None
    item.image.focus = (0.9, 0.5)
    assert item.image.focus == (0.9, 0.5)  # on the instance at once, stored by save
    assert Item.objects.get(pk=item.pk).image.focus is None
    item.save()
    assert Item.objects.get(pk=item.pk).image.focus == (0.9, 0.5)
    assert Item.objects.filter(image_styles__has_key="@focus").get() == item
    item.image.focus = None
    item.save(update_fields=["image"])
    assert Item.objects.get(pk=item.pk).image.focus is None


def test_the_crop_styles_follow_the_focus_and_the_others_stay():
    item = ready()
    assert mean_colour(item.image.styles["square"]) == (128, 0, 128)  # centre: half and half
    thumb = item.image.styles["thumb"].name
    item.image.focus = (0.95, 0.5)
    item.save()
    assert Job.objects.count() == 1  # committed with the record
    assert item.image.ready  # the old crop is served meanwhile
    work()
    item = Item.objects.get(pk=item.pk)
    assert mean_colour(item.image.styles["square"]) == (0, 0, 255)
    assert item.image.styles["thumb"].name == thumb
    item.image.focus = (0.05, 0.5)
    item.save()
    work()
    item = Item.objects.get(pk=item.pk)
    assert mean_colour(item.image.styles["square"]) == (255, 0, 0)


@pytest.mark.parametrize(
    "value", [(1.5, 0.5), (0.5,), "middle", (0.5, -0.1)], ids=["over", "one", "text", "under"]
)
def test_a_focus_out_of_the_image_is_refused(value):
    item = ready()
    with pytest.raises(ValueError, match="focal point"):
        item.image.focus = value


def test_an_empty_field_has_no_focus_to_set():
    item = Item.objects.create(title="empty")
    assert item.image.focus is None
    with pytest.raises(ValueError, match="no file"):
        item.image.focus = (0.5, 0.5)


def test_a_focus_set_before_the_first_save_is_inserted_with_the_record():
    item = Item(title="new")
    item.image.save("halves.png", ContentFile(images.halves()), save=False)
    item.image.focus = (0.95, 0.5)
    item.save()
    assert Item.objects.get(pk=item.pk).image.focus == (0.95, 0.5)
    work()
    assert Job.objects.count() == 0  # made from the start with it: nothing left due
    assert mean_colour(Item.objects.get(pk=item.pk).image.styles["square"]) == (0, 0, 255)


def test_a_new_upload_starts_without_the_focus_of_the_image_it_replaces():
    item = ready()
    item.image.focus = (0.95, 0.5)
    item.save()
    work()
    item.image.save("other.png", ContentFile(images.halves()))
    assert item.image.focus is None
    work()
    item = Item.objects.get(pk=item.pk)
    assert item.image.focus is None
    assert mean_colour(item.image.styles["square"]) == (128, 0, 128)


def test_a_focus_set_on_a_record_still_processing_is_used_by_its_upload_job():
    item = upload(data=images.halves(), name="halves.png")
    item.image.focus = (0.05, 0.5)
    item.save()
    assert Job.objects.count() == 1  # the upload's own job will read it
    work()
    item = Item.objects.get(pk=item.pk)
    assert mean_colour(item.image.styles["square"]) == (255, 0, 0)


def test_a_field_processed_in_the_request_remakes_its_crops_on_commit(
    django_capture_on_commit_callbacks,
):
    avatar = Avatar()
    with django_capture_on_commit_callbacks(execute=True):
        avatar.image.save("me.png", ContentFile(images.halves()))
    icon = avatar.image.styles["icon"].name
    with django_capture_on_commit_callbacks(execute=True):
        avatar.image.focus = (1, 0)
        avatar.save()
    assert Job.objects.count() == 0
    avatar = Avatar.objects.get(pk=avatar.pk)
    assert avatar.image.styles["icon"].name != icon
    assert mean_colour(avatar.image.styles["icon"]) == (0, 0, 255)
    assert not avatar.image.storage.exists(icon)
