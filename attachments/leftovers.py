"""Staged files that nothing names any more, deleted once surely abandoned.

An upload is staged before its record's save commits. When that save never
commits (its transaction rolled back, the database was down, the process was
killed), no record and no job names the staged file, and nothing else would
ever delete it. The worker lists the staging storage now and then and deletes
such leftovers once they are older than ``LEFTOVER_GRACE``: an upload whose
record is still being committed is younger than that, so it is never taken.

Only upload folders (``<upload_to>/<uuid>/``, each made for one upload) are
looked at, and a folder is kept whole while a record or a job names any file
in it or while any of its files is recent.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.core.files.storage import Storage
from django.db.models import Q
from django.utils import timezone

from . import storage, targets
from .models import Job

if TYPE_CHECKING:
    pass

logger = logging.getLogger("attachments")

# Upload folders looked up per round of queries.
_BATCH = 100


@dataclass
class _Folder:
    path: str
    files: list[str] = field(default_factory=list)
    newest: datetime | None = None

    def add(self, name: str | None, modified: datetime) -> None:
        if name is not None:
            self.files.append(name)
        self.newest = modified if self.newest is None else max(self.newest, modified)


def sweep(older_than: timedelta) -> int:
    """Delete staged files no record or job names, older than ``older_than``; return how many.

    Does nothing (and logs an error) when the staging storage holds other
    folders too, such as MEDIA_ROOT: their files are named by no record.
    """
    staged = storage.staging_storage()
    shared = shared_with(staged)
    if shared:
        logger.error(
            "Not deleting staging leftovers: the staging storage also holds %s (attachments.E130).",
            ", ".join(shared),
        )
        return 0
    cutoff = timezone.now() - older_than
    deleted = 0
    for batch in _batched(_old_folders(staged, cutoff)):
        named = _named(batch)
        for folder in batch:
            if named.isdisjoint(folder.files):
                storage.delete_all(staged, folder.files)
                storage.remove_empty_folder(staged, folder.path)
                deleted += len(folder.files)
    if deleted:
        logger.info("Deleted %s staged file(s) that no record or job named.", deleted)
    return deleted


def shared_with(staged: Storage) -> list[str]:
    """Name what else lives in ``staged``'s place: served folders, attachment fields' storages."""
    mine = storage.place(staged)
    if mine is None:
        return []
    others = dict(storage.served_folders())
    for attachment in targets.fields():
        if attachment.storage is not staged:
            place = storage.place(attachment.storage)
            if place is not None:
                others[f"the storage of {attachment.field_id}"] = place
    return [what for what, place in others.items() if storage.within(place, mine)]


def _old_folders(staged: Storage, cutoff: datetime) -> Iterator[_Folder]:
    """Yield the upload folders of ``staged`` whose every file is older than ``cutoff``."""
    folders: dict[str, _Folder] = {}
    for name, modified in storage.walk(staged):
        path, file = (name[:-1], None) if name.endswith("/") else (posixpath.dirname(name), name)
        if storage.is_version_folder(path):
            folders.setdefault(path, _Folder(path)).add(file, modified)
    for folder in folders.values():
        if folder.newest is not None and folder.newest <= cutoff:
            yield folder


def _batched(folders: Iterable[_Folder]) -> Iterator[list[_Folder]]:
    batch: list[_Folder] = []
    for folder in folders:
        batch.append(folder)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _named(folders: list[_Folder]) -> set[str]:
    """Return the names in ``folders`` that a record or a job names."""
    names = [name for folder in folders for name in folder.files]
    if not names:
        return set()
    named: set[str] = set()
    for attachment in targets.fields():
        rows = attachment.model._base_manager.filter(**{f"{attachment.attname}__in": names})
        named.update(rows.values_list(attachment.attname, flat=True))
    named.update(Job.objects.filter(source__in=names).values_list("source", flat=True))
    # Versions a job is to delete once its upload is ready, one name a line.
    in_previous = reduce(or_, (Q(previous__contains=f"{f.path}/") for f in folders))
    for previous in Job.objects.filter(in_previous).values_list("previous", flat=True):
        named.update(previous.splitlines())
    return named
