"""Uploading and working off jobs, as most tests need them."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.management import call_command

from demo_site.models import Item
from tests import images


def upload(data: bytes | None = None) -> Item:
    """An item with ``data`` (a small JPEG by default) staged and its job queued."""
    item = Item(title="x")
    item.image.save("a.jpg", ContentFile(data or images.jpeg((320, 240))))
    return item


def work() -> str:
    """Run a burst worker, as ``manage.py process_attachments --burst``; return its output."""
    out = io.StringIO()
    call_command("process_attachments", burst=True, stdout=out, verbosity=0)
    return out.getvalue()
