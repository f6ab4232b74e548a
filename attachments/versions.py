"""Which version a record points at, changed only under the record's row lock.

A save that brings a new upload, or empties the field, changes the record's two
columns (name and state) in one short transaction of its own, or in the
caller's: lock the row, read the version it points at now, point it at the new
one and queue the job that will publish the new version and delete the old.
Reading and replacing under one lock, with the job in the same commit, is what
keeps concurrent saves safe without a transaction around them: whatever the
interleaving, every replaced version is named by the job of the version that
replaced it, and the newest upload always has its job. The model's own UPDATE
that follows keeps what the database holds in those two columns (the field
writes ``F()`` expressions), so a save that read the record before another save
or a worker changed it never writes an older version back.

A new record has nothing to replace: its INSERT commits, then its job (a
process killed in between leaves an upload the orphan sweep queues again,
correctly with nothing to delete).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, router, transaction
from django.db.models import F

from . import queue, storage, transport
from .conf import conf
from .models import Job
from .targets import PROCESSING

if TYPE_CHECKING:
    from .fields import AttachmentField


@dataclass(frozen=True)
class Replaced:
    """What replacing a record's version did."""

    previous: str  # the version the record pointed at, "" when it had none
    job: Job | None  # the new version's job, None when processed in the request


def lock(field: AttachmentField, object_id: object, using: str) -> str | None:
    """Lock the record's row until the transaction ends; return its name, None when gone."""
    rows = field.model._base_manager.using(using).filter(pk=object_id)
    if not connections[using].features.has_select_for_update:
        # SQLite: take the write lock with the first statement. A read first
        # would have to be upgraded to a write, which SQLite refuses at once,
        # without waiting, when another writer is about to commit.
        if not rows.update(**{field.state_attname: F(field.state_attname)}):
            return None
        rows = rows.all()
    else:
        rows = rows.select_for_update()
    return rows.values_list(field.attname, flat=True).first()


def replace(
    field: AttachmentField,
    object_id: object,
    source: str,
    using: str,
    columns: Mapping[str, Any] | None = None,
) -> Replaced | None:
    """Point the record at the staged upload ``source`` and queue its job, in one commit.

    ``columns`` are the record's other columns that describe the new version
    (``AttachmentField.version_columns``), written with its name.

    Returns None, changing nothing, when the record is gone: the model's save
    then inserts it again, as Django does, and it is queued as a new record.
    """
    with transaction.atomic(using=using, savepoint=False):
        previous = lock(field, object_id, using)
        if previous is None:
            return None
        field.model._base_manager.using(using).filter(pk=object_id).update(
            **{field.attname: source, field.state_attname: PROCESSING, **(columns or {})}
        )
        job = None
        if field.queued:
            job = _enqueue(field, object_id, source, (previous,) if previous else (), using)
    return Replaced(previous=previous, job=job)


def clear(field: AttachmentField, object_id: object, using: str) -> bool:
    """Empty the record's field; its versions and those its jobs name go on commit.

    Returns False, changing nothing, when the record is gone.
    """
    with transaction.atomic(using=using, savepoint=False):
        current = lock(field, object_id, using)
        if current is None:
            return False
        field.model._base_manager.using(using).filter(pk=object_id).update(
            **{field.attname: "", field.state_attname: "", **field.version_columns(None)}
        )
        forget(field, object_id, current, using)
    return True


def forget(field: AttachmentField, object_id: object, name: str, using: str) -> None:
    """Drop the record's waiting jobs; on commit delete ``name`` and every version they name.

    For a record being emptied or deleted, with its row locked: nothing else
    would ever delete those files.
    """
    names = [name] if name else []
    names = list(dict.fromkeys([*names, *queue.discard_target(field.field_id, object_id)]))
    if names:
        transaction.on_commit(lambda: delete_versions(field, names), using=using)


def enqueue(
    field: AttachmentField,
    object_id: object,
    source: str,
    previous: tuple[str, ...] = (),
    *,
    new_record: bool = False,
    using: str | None = None,
) -> Job | None:
    """Queue the job of the upload ``source``, which the record points at already.

    Returns None when the record has moved on from ``source`` (a newer upload,
    cleared, deleted): its staged file then goes on commit, as nobody else
    would delete it. ``new_record`` skips the check: a record just inserted
    has no older jobs for this one to replace.
    """
    using = using or router.db_for_write(field.model)
    with transaction.atomic(using=using, savepoint=False):
        if not new_record and lock(field, object_id, using) != source:
            staged = storage.staging_storage()
            transaction.on_commit(lambda: storage.delete_all(staged, [source]), using=using)
            return None
        return _enqueue(field, object_id, source, previous, using, new_record=new_record)


def _enqueue(
    field: AttachmentField,
    object_id: object,
    source: str,
    previous: tuple[str, ...],
    using: str,
    *,
    new_record: bool = False,
) -> Job:
    """Queue ``source``'s job, replacing the record's waiting ones; the row is locked (or new)."""
    enqueued = queue.enqueue(
        target=field.field_id,
        object_id=object_id,
        source=source,
        previous=previous,
        queue=field.queue_name,
        priority=field.priority,
        max_attempts=field.max_attempts or conf.MAX_ATTEMPTS,
        new_record=new_record,
    )
    if enqueued.superseded_sources:
        staged = storage.staging_storage()
        sources = enqueued.superseded_sources
        transaction.on_commit(lambda: storage.delete_all(staged, sources), using=using)
    transport.wake(enqueued.job, using=using)
    return enqueued.job


def delete_versions(field: AttachmentField, names: Iterable[str]) -> None:
    """Delete every file the versions ``names`` may occupy, staged or published.

    Whatever state the record showed, a worker may have moved a version on
    since, so both places are cleared; names are unique, so nothing else is
    touched.
    """
    staged = storage.staging_storage()
    for name in names:
        storage.delete_all(staged, [name])
        storage.delete_all(field.storage, storage.version_files(field.storage, name))
