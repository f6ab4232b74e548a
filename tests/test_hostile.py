"""Every case of the hostile corpus, through the whole pipeline: form, then worker."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from attachments.models import Job
from attachments.storage import staging_storage
from demo_site.forms import ItemForm
from demo_site.models import Item
from tests.hostile import CASES, FAILED, READY, REJECTED, Case

pytestmark = pytest.mark.django_db

# What a stored name may look like, whatever the client sent.
SAFE_NAME = re.compile(r"^items/[0-9a-f]{32}/[a-z0-9_-]{1,60}\.(jpg|png|gif|webp)$")


def submit(case: Case) -> ItemForm:
    upload = SimpleUploadedFile(case.filename, case.content(), case.content_type)
    return ItemForm({"title": case.id}, {"image": upload})


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_upload(case, settings):
    settings.ATTACHMENTS = {"MAX_PIXELS": 40_000_000}
    form = submit(case)
    if case.outcome == REJECTED:
        assert not form.is_valid()
        assert case.message in " ".join(form.errors["image"])
        assert Item.objects.count() == 0
        assert Job.objects.count() == 0
        return
    assert form.is_valid(), form.errors
    item = form.save()
    assert SAFE_NAME.match(item.image.name), item.image.name
    assert item.image.processing

    out = io.StringIO()
    call_command("process_attachments", burst=True, stdout=out, verbosity=0)
    assert out.getvalue().startswith("1 job processed")
    item.refresh_from_db()
    assert item.image.state == case.outcome
    if case.outcome == READY:
        assert Job.objects.count() == 0
        for style in item.image.styles.values():
            with style.storage.open(style.name) as fp:
                data = fp.read()
            assert b"<script" not in data  # styles are re-encoded pixels, nothing else
        assert not staging_storage().exists(item.image.name)
    elif case.outcome == FAILED:
        job = Job.objects.get()
        assert job.state == "failed"
        assert case.message in job.last_error
        assert job.attempts == 1  # bad data is not retried
        assert staging_storage().exists(item.image.name)  # nothing lost


def test_polyglot_original_is_served_as_an_image(client):
    case = next(case for case in CASES if case.id == "polyglot-gif")
    item = submit(case).save()
    call_command("process_attachments", burst=True, stdout=io.StringIO(), verbosity=0)
    item.refresh_from_db()
    assert item.image.name.endswith(".gif")
    import mimetypes

    assert mimetypes.guess_type(item.image.name)[0] == "image/gif"


def test_over_the_byte_limit_is_refused(settings):
    settings.ATTACHMENTS = {"MAX_BYTES": 1000}
    case = next(case for case in CASES if case.id == "huge-exif-block")
    form = submit(case)
    assert not form.is_valid()
    assert "largest accepted" in form.errors["image"][0]


def test_over_the_pixel_limit_is_refused(settings):
    settings.ATTACHMENTS = {"MAX_PIXELS": 100}
    case = next(case for case in CASES if case.id == "cmyk-jpeg")
    form = submit(case)
    assert not form.is_valid()
    assert "pixels" in form.errors["image"][0]


def test_worker_enforces_the_pixel_limit_too(settings):
    # Accepted under an older, larger limit; the worker checks again before decoding.
    item = submit(next(case for case in CASES if case.id == "cmyk-jpeg")).save()
    settings.ATTACHMENTS = {"MAX_PIXELS": 100}
    call_command("process_attachments", burst=True, stdout=io.StringIO(), verbosity=0)
    item.refresh_from_db()
    assert item.image.failed
    job = Job.objects.get()
    assert "pixels" in job.last_error
    assert job.attempts == 1


def test_a_bomb_is_refused_in_the_words_of_max_pixels(settings, monkeypatch):
    # Pillow's own limit (and message) fires first for a header this large.
    settings.ATTACHMENTS = {"MAX_PIXELS": 40_000_000}
    form = submit(next(case for case in CASES if case.id == "png-bomb"))
    assert not form.is_valid()
    assert form.errors["image"] == [
        "The image has more than 40,000,000 pixels; the largest accepted is 40,000,000 pixels."
    ]


def test_the_worker_refuses_in_the_words_of_max_pixels(settings, monkeypatch):
    item = submit(next(case for case in CASES if case.id == "cmyk-jpeg")).save()  # 64x48
    settings.ATTACHMENTS = {"MAX_PIXELS": 100}
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2000 itself
    call_command("process_attachments", burst=True, stdout=io.StringIO(), verbosity=0)
    item.refresh_from_db()
    assert item.image.failed
    assert "the largest accepted is 100 pixels" in Job.objects.get().last_error
