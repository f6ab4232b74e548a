"""Decide, in the request, whether an upload is an image this site accepts.

Only the header is read: the request must stay fast however large the image,
and decoding pixels is the worker's job.
"""

from __future__ import annotations

from typing import IO

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from . import imaging
from .conf import conf
from .exceptions import ImageTooLarge, InvalidImage


def validate_upload(file: IO[bytes], size: int | None = None) -> imaging.ImageInfo:
    """Return what the upload is, or raise ``InvalidImage`` with a message for the user."""
    if size is None:
        size = _size(file)
    if size == 0:
        raise InvalidImage(_("The submitted file is empty."), code="empty")
    if size > conf.MAX_BYTES:
        raise ImageTooLarge(
            _("The file is %(size)s; the largest accepted is %(max)s."),
            code="file_too_large",
            params={"size": filesizeformat(size), "max": filesizeformat(conf.MAX_BYTES)},
        )
    position = file.tell()
    try:
        return imaging.probe(file, max_pixels=conf.MAX_PIXELS, formats=conf.FORMATS)
    finally:
        file.seek(position)


def _size(file: IO[bytes]) -> int:
    position = file.tell()
    file.seek(0, 2)
    size = file.tell()
    file.seek(position)
    return size
