"""AttachmentFormField, as a Django form uses it: uploads judged by content, the focal point."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from attachments.models import Job
from demo_site.forms import ItemForm
from demo_site.models import Item
from tests import images
from tests.uploads import upload, work

pytestmark = pytest.mark.django_db


def ready() -> Item:
    """A processed item whose image is ``images.halves()``, a picture a focal point can move in."""
    item = upload(images.halves())
    work()
    return Item.objects.get(pk=item.pk)


def test_form_rejects_a_non_image_named_jpg():
    form = ItemForm(
        {"title": "x"},
        {"image": SimpleUploadedFile("evil.jpg", b"<html>not an image</html>", "image/jpeg")},
    )
    assert not form.is_valid()
    assert "image" in form.errors
    assert Item.objects.count() == 0
    assert Job.objects.count() == 0


def test_form_rejects_images_over_the_limits(settings):
    settings.ATTACHMENTS = {"MAX_PIXELS": 100 * 100}
    form = ItemForm(
        {"title": "x"},
        {"image": SimpleUploadedFile("big.png", images.png((200, 200)), "image/png")},
    )
    assert not form.is_valid()
    settings.ATTACHMENTS = {"MAX_BYTES": 10}
    form = ItemForm(
        {"title": "x"},
        {"image": SimpleUploadedFile("small.png", images.png((2, 2)), "image/png")},
    )
    assert not form.is_valid()


def test_form_accepts_an_image_by_content_whatever_its_name():
    form = ItemForm(
        {"title": "x"},
        {"image": SimpleUploadedFile("photo.txt", images.png((8, 8)), "text/plain")},
    )
    assert form.is_valid(), form.errors
    item = form.save()
    assert item.image.name.endswith(".png")
    assert item.image.processing


def post(item: Item, **data: object) -> ItemForm:
    return ItemForm({"title": item.title, **data}, instance=item)


def test_a_form_stores_the_focus_its_picker_posts():
    item = ready()
    form = post(item, **{"image-focus": "0.95,0.5"})
    assert form.has_changed()
    assert form.changed_data == ["image"]
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"] == item.image  # the kept file, with its new focus
    form.save()
    assert Item.objects.get(pk=item.pk).image.focus == (0.95, 0.5)
    assert Job.objects.count() == 1


@pytest.mark.parametrize("posted", ["", "0.95,0.5"], ids=["not clicked", "same"])
def test_a_form_posting_no_new_focus_changes_nothing(posted):
    item = ready()
    item.image.focus = (0.95, 0.5)
    item.save()
    work()
    item = Item.objects.get(pk=item.pk)
    form = post(item, **{"image-focus": posted})
    assert not form.has_changed()
    assert form.is_valid(), form.errors
    form.save()
    assert Item.objects.get(pk=item.pk).image.focus == (0.95, 0.5)
    assert Job.objects.count() == 0


@pytest.mark.parametrize("posted", ["left", "1.5,0.5", "0.5"])
def test_a_form_refuses_a_focus_that_is_no_point_of_the_image(posted):
    item = ready()
    form = post(item, **{"image-focus": posted})
    assert form.has_changed()
    assert not form.is_valid()
    assert form.errors["image"] == ["Choose the focal point by clicking on the image."]


def test_a_form_with_a_new_upload_ignores_the_point_clicked_on_the_old_image():
    item = ready()
    form = ItemForm(
        {"title": "t", "image-focus": "0.95,0.5"},
        {"image": SimpleUploadedFile("new.png", images.halves())},
        instance=item,
    )
    assert form.is_valid(), form.errors
    form.save()
    item = Item.objects.get(pk=item.pk)
    assert item.image.name.endswith("/new.png")
    assert item.image.focus is None


def test_a_form_shown_again_for_another_error_keeps_the_point_clicked():
    item = ready()
    form = ItemForm({"title": "", "image-focus": "0.95,0.5"}, instance=item)
    assert not form.is_valid()
    assert '<input type="hidden" name="image-focus" value="0.95,0.5">' in form.as_p()
    assert Item.objects.get(pk=item.pk).image.focus is None  # nothing saved
