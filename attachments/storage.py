"""Where attachment files live and what they are called.

An upload is first written to the *staging* storage; the worker later writes the
original and every style to the field's *final* storage under the same name.
Every upload gets a fresh directory (``<upload_to>/<uuid>/``), so a name is never
reused: caches can keep objects forever and a retried job overwrites only what
it wrote itself.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import posixpath
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import IO, cast

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import LazyObject, empty
from django.utils.text import slugify

from . import plan
from .conf import conf
from .exceptions import AttachmentsError
from .styles import EXTENSIONS

# Long stems make keys unwieldy and some file systems cap names at 255 bytes.
_MAX_STEM = 60


class StorageMismatch(AttachmentsError):
    """A storage saved a file under another name than the one asked for."""


# The folder unique_name() makes for one upload: its files are that upload's alone.
_VERSION_FOLDER = re.compile(r"[0-9a-f]{32}")


def staging_storage() -> Storage:
    """Return the storage uploads wait in until their job has run."""
    alias = conf.STAGING_STORAGE
    if alias:
        return storages[alias]
    return _default_staging(staging_root())


def staging_root() -> str:
    """Return the folder of the default staging storage: ``STAGING_ROOT``, else beside MEDIA_ROOT.

    ``<MEDIA_ROOT>-staging`` is outside everything that serves MEDIA_ROOT, on
    the disk media already lives on, and named after MEDIA_ROOT so that two
    sites whose media folders share a parent never share a staging folder.
    """
    root = conf.STAGING_ROOT or os.path.abspath(settings.MEDIA_ROOT).rstrip(os.sep) + "-staging"
    return os.path.abspath(root)


class _PrivateFileSystemStorage(FileSystemStorage):
    """Files that are never linked to: staged originals are not public yet."""

    def url(self, name: str | None) -> str:
        raise ValueError("Staged originals are not accessible via a URL.")


@cache
def _default_staging(root: str) -> Storage:
    return _PrivateFileSystemStorage(location=root)


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


def style_name(
    original: str, style: str, fingerprint: str, fmt: str, width: int | None = None
) -> str:
    """Return the name of ``style``'s file made from the declaration ``fingerprint``.

    A style made again from a changed declaration gets a new name, so the file
    it replaces stays published (and cached copies never go stale) until the
    record points at the new one. A responsive style's files carry their
    ``width`` too: ``<stem>-hero-640w-<fingerprint>.avif``.
    """
    root = posixpath.splitext(original)[0]
    if width is not None:
        return f"{root}-{style}-{width}w-{fingerprint}{EXTENSIONS[fmt]}"
    return f"{root}-{style}-{fingerprint}{EXTENSIONS[fmt]}"


def made_names(original: str, style: str, entry: plan.Made | None) -> list[str]:
    """Return the names of the files ``entry`` says ``style`` has: none, one, or its variants.

    A responsive style's fallback (its widest file in its last format, what
    its ``url`` serves) is the last.
    """
    if entry is None or not entry.ok:
        return []
    if entry.variants:
        return [
            style_name(original, style, entry.fingerprint, fmt, width)
            for fmt, width, _ in entry.variants
        ]
    return [style_name(original, style, entry.fingerprint, entry.format)]


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
    file.content_type = (  # type: ignore[attr-defined]
        mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
    saved = storage.save(name, file)
    if saved != name:
        storage.delete(saved)
        raise StorageMismatch(f"{storage!r} saved {name!r} as {saved!r}.")


def put_staged(staged: Storage, target: Storage, name: str, content: IO[bytes]) -> None:
    """Store the staged original ``name`` (open as ``content``) at ``name`` in ``target``.

    Between two plain local folders on one file system it is a hard link: the
    target's file is stored (a name of its own, which deleting the staged name
    later leaves whole) without reading and writing the whole original again
    (320 MB of writes per 90 photos in benchmarks/worker.py). A staged file is
    never written again, so the two names can share the bytes. Anything else
    (another file system, a storage that saves its own way) is copied by ``put``.
    """
    staged, target = _unwrapped(staged), _unwrapped(target)
    if _links(staged) and _links(target):
        path = target.path(name)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # what a failed attempt left
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.link(staged.path(name), path)
        except OSError:  # EXDEV, a file system without hard links...
            pass
        else:
            mode = target.file_permissions_mode  # type: ignore[attr-defined]
            if mode is not None:
                os.chmod(path, mode)
            return
    content.seek(0)
    put(target, name, content)


def _unwrapped(storage: Storage) -> Storage:
    """The storage behind ``default_storage`` (a lazy proxy), or ``storage`` itself."""
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return cast(Storage, storage._wrapped)
    return storage


def _links(storage: Storage) -> bool:
    """Does ``storage`` write plain files as FileSystemStorage does, in folders of default mode?"""
    return (
        isinstance(storage, FileSystemStorage)
        and type(storage).save is Storage.save
        and getattr(type(storage), "_save", None) is getattr(FileSystemStorage, "_save", None)
        and storage.directory_permissions_mode is None
    )


def delete_all(storage: Storage, names: Iterable[str]) -> None:
    """Delete ``names`` from ``storage``, and each upload's folder with its last file.

    Names already gone are fine.
    """
    for name in names:
        storage.delete(name)
        remove_empty_folder(storage, posixpath.dirname(name))


def is_version_folder(folder: str) -> bool:
    """Is ``folder`` the folder ``unique_name`` made for one upload?"""
    return bool(_VERSION_FOLDER.fullmatch(posixpath.basename(folder)))


def walk(storage: Storage) -> Iterator[tuple[str, datetime]]:
    """Yield the name and modification time of every file in ``storage``.

    An upload's folder left empty (a process killed between deleting its last
    file and the folder) comes as its name with a trailing slash.
    """
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        # S3: one paginated listing carries the times; listdir() would cost a
        # request per folder and get_modified_time() one per file.
        location = str(getattr(storage, "location", "")).strip("/")
        prefix = location + "/" if location else ""
        for summary in bucket.objects.filter(Prefix=prefix):
            if not summary.key.endswith("/"):
                yield summary.key[len(prefix) :], summary.last_modified
        return
    yield from _walk_folders(storage, "")


def _walk_folders(storage: Storage, folder: str) -> Iterator[tuple[str, datetime]]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return  # nothing staged yet, or removed while we looked
    for file in files:
        name = posixpath.join(folder, file)
        try:
            yield name, storage.get_modified_time(name)
        except FileNotFoundError:
            continue
    for child in folders:
        yield from _walk_folders(storage, posixpath.join(folder, child))
    if not (folders or files) and is_version_folder(folder):
        try:
            modified = storage.get_modified_time(folder)
        except (OSError, NotImplementedError):
            return
        yield folder + "/", modified


def remove_empty_folder(storage: Storage, folder: str) -> None:
    """Remove an upload's folder if it is empty; only real folders (FileSystemStorage) exist."""
    # Only an upload's own folder: a shared parent (upload_to) may be getting a
    # new upload's folder this very moment, which removing it would break.
    if not isinstance(storage, FileSystemStorage) or not is_version_folder(folder):
        return
    with contextlib.suppress(OSError):  # not empty (other files of the version), or gone
        os.rmdir(storage.path(folder))


def place(storage: Storage) -> tuple[str, str] | None:
    """Return where ``storage`` keeps its files: a volume and a ``/``-separated path in it.

    Two storages overlap when one's path lies in the other's on the same
    volume. None for storages whose place cannot be told.
    """
    if isinstance(storage, FileSystemStorage):
        return "file", os.path.realpath(storage.location).replace(os.sep, "/")
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        endpoint = getattr(storage, "endpoint_url", None) or ""
        return f"s3:{endpoint}:{bucket}", "/" + str(getattr(storage, "location", "")).strip("/")
    return None


def folder_place(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Return the place of a local folder, comparable with ``place``'s."""
    return "file", os.path.realpath(path).replace(os.sep, "/")


def served_folders() -> dict[str, tuple[str, str]]:
    """Return the places of the folders a site serves, by their setting."""
    found = {}
    for setting in ("MEDIA_ROOT", "STATIC_ROOT"):
        if value := getattr(settings, setting, None):
            found[setting] = folder_place(value)
    for entry in getattr(settings, "STATICFILES_DIRS", ()):
        # An entry is a path or a (prefix, path) pair.
        path = entry[1] if isinstance(entry, tuple | list) else entry
        found[f"STATICFILES_DIRS ({path})"] = folder_place(path)
    return found


def within(inner: tuple[str, str], outer: tuple[str, str]) -> bool:
    """Does the place ``inner`` lie in ``outer`` (or is it ``outer``)?"""
    (inner_volume, inner_path), (outer_volume, outer_path) = inner, outer
    return inner_volume == outer_volume and (
        inner_path == outer_path or inner_path.startswith(outer_path.rstrip("/") + "/")
    )
