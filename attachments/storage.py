"""Where attachment files live and what they are called.

An upload is first written to the *staging* storage; the worker later writes the
original and every style to the field's *final* storage under the same name.
Every upload gets a fresh directory (``<upload_to>/<uuid>/``), so a name is never
reused: caches can keep objects forever and a retried job overwrites only what
it wrote itself.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import uuid
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.text import slugify

from .conf import conf
from .exceptions import AttachmentsError
from .styles import EXTENSIONS, Style, format_for_extension

# Long stems make keys unwieldy and some file systems cap names at 255 bytes.
_MAX_STEM = 60


class StorageMismatch(AttachmentsError):
    """A storage saved a file under another name than the one asked for."""


def staging_storage() -> Storage:
    """Return the storage uploads wait in until their job has run."""
    alias = conf.STAGING_STORAGE
    if alias:
        return storages[alias]
    return _default_staging(str(settings.MEDIA_ROOT))


class _PrivateFileSystemStorage(FileSystemStorage):
    """Files that are never linked to: staged originals are not public yet."""

    def url(self, name: str | None) -> str:
        raise ValueError("Staged originals are not accessible via a URL.")


@cache
def _default_staging(media_root: str) -> Storage:
    return _PrivateFileSystemStorage(location=os.path.join(media_root, "attachments-staging"))


def upload_filename(client_name: str, source_format: str) -> str:
    """Return the file name an upload is stored under, before ``upload_to`` applies.

    Only a slug of the client's file name survives; the extension comes from
    the content, never from the client.
    """
    stem = slugify(Path(posixpath.basename(client_name.replace("\\", "/"))).stem)
    stem = stem[:_MAX_STEM].strip("-_") or "image"
    return stem + EXTENSIONS.get(source_format, f".{source_format.lower()}")


def unique_name(name: str) -> str:
    """Return ``name`` moved into a fresh directory: ``<dir>/<uuid>/<file>``."""
    directory, filename = posixpath.split(name)
    return posixpath.join(directory, uuid.uuid4().hex, filename)


def style_name(original: str, style: Style) -> str:
    """Return the name of ``style``'s file for the original called ``original``."""
    root, extension = posixpath.splitext(original)
    output = style.output_format(format_for_extension(extension))
    return f"{root}-{style.name}{EXTENSIONS[output]}"


def version_names(original: str, styles: Iterable[Style]) -> list[str]:
    """Return every name one upload occupies in the final storage."""
    return [original, *(style_name(original, style) for style in styles)]


def put(storage: Storage, name: str, content: bytes | IO[bytes]) -> None:
    """Write ``content`` at exactly ``name``, replacing what a failed attempt left."""
    # Storages that overwrite (S3's default) need no look first: one request saved per object.
    if not getattr(storage, "file_overwrite", False) and storage.exists(name):
        storage.delete(name)
    file = ContentFile(content) if isinstance(content, bytes) else File(content)
    # Read by django-storages for the object's Content-Type.
    file.content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    saved = storage.save(name, file)
    if saved != name:
        storage.delete(saved)
        raise StorageMismatch(f"{storage!r} saved {name!r} as {saved!r}.")


def delete_all(storage: Storage, names: Iterable[str]) -> None:
    """Delete ``names`` from ``storage``; names already gone are fine."""
    for name in names:
        storage.delete(name)
