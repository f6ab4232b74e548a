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
from .styles import EXTENSIONS

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


def style_name(original: str, style: str, fingerprint: str, fmt: str) -> str:
    """Return the name of ``style``'s file made from the declaration ``fingerprint``.

    A style made again from a changed declaration gets a new name, so the file
    it replaces stays published (and cached copies never go stale) until the
    record points at the new one.
    """
    root = posixpath.splitext(original)[0]
    return f"{root}-{style}-{fingerprint}{EXTENSIONS[fmt]}"


def version_files(storage: Storage, original: str) -> list[str]:
    """Return every file of the version ``original`` in ``storage``: it and its styles.

    A version owns its directory (see ``unique_name``), whatever styles it was
    made with over time, so listing it finds files no declaration names anymore.
    """
    directory = posixpath.dirname(original)
    try:
        files = storage.listdir(directory)[1]
    except FileNotFoundError:
        return []
    return [posixpath.join(directory, name) for name in files]


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
