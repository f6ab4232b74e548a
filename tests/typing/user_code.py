"""A project's code using the public API, type-checked by tests/test_typing.py (never run)."""

from __future__ import annotations

from typing import assert_type, reveal_type

from attachments import AttachmentField
from attachments.fields import AttachmentFieldFile, StyleFile
from demo_site.models import Item
from tests.testapp.models import Photo


def show(item: Item, photo: Photo) -> None:
    assert_type(item.image, AttachmentFieldFile)
    assert_type(photo.image, AttachmentFieldFile)
    assert_type(item.image.styles["thumb"], StyleFile)
    assert_type(item.image.styles["thumb"].url, str)
    assert_type(item.image.style_url("thumb"), str)
    assert_type(item.image.url, str)
    assert_type(item.image.state, str)
    assert_type(item.image.ready, bool)
    assert_type(item.image.processing, bool)
    assert_type(item.image.failed, bool)
    assert_type(item.image.focus, tuple[float, float] | None)
    item.image.focus = (0.3, 0.7)
    item.image.focus = [0.3, 0.7]
    item.image.focus = None
    assert_type(Item._meta.get_field("image"), AttachmentField)
    reveal_type(item.image.field)
