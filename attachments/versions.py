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

A new record has nothing to replace: its INSERT and its job commit together.

Outside a transaction, Django commits a model's save alone (one statement);
a save that changes an attachment writes more (the lock, the version, the
job after the INSERT), so ``commit_once`` makes it one transaction, as Django
does for a child model's save with its parents': one commit, one disk sync,
instead of two or three. A process killed between commits would otherwise
leave an upload the orphan sweep queues again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from django.db import connections, models, router, transaction
from django.db.models.base import ModelBase

from . import plan, queue, storage, transport
from .conf import conf
from .geometry import Point
from .models import Job
from .targets import PROCESSING, READY

if TYPE_CHECKING:
    from .fields import AttachmentField


@dataclass(frozen=True)
class Replaced:
    """What replacing a record's version did."""

    previous: str  # the version the record pointed at, "" when it had none
    job: Job | None  # the new version's job, None when processed in the request


def commit_once(
    model: type[models.Model], prepare: Callable[[models.Model, Collection[str] | None], bool]
) -> None:
    """Make a save of ``model`` that changes an attachment one transaction, post_save included.

    ``prepare(instance, update_fields)`` stages the save's new uploads (first,
    so that no lock is held while a file is written) and says whether the save
    changes an attachment's version. Inside a caller's transaction, for a raw
    save, or with the job table on another database than the record's (whose
    commit must follow the record's), the save is Django's own.
    """
    save_base = model.save_base
    if getattr(save_base, "commits_once", False):
        return  # inherited from a parent model that has an attachment too

    @functools.wraps(save_base)
    def wrapper(
        self: models.Model,
        raw: bool = False,
        force_insert: bool | tuple[ModelBase, ...] = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        using = using or router.db_for_write(type(self), instance=self)
        names = None if update_fields is None else frozenset(update_fields)
        saves = functools.partial(save_base, self, raw, force_insert, force_update, using, names)
        if (
            raw
            or connections[using].in_atomic_block
            or router.db_for_write(Job) != using
            or not prepare(self, names)
        ):
            return saves()
        with transaction.atomic(using=using, savepoint=False):
            return saves()

    wrapper.commits_once = True  # type: ignore[attr-defined]
    model.save_base = wrapper  # type: ignore[method-assign]


@dataclass(frozen=True)
class Refocused:
    """What storing a record's focal point did."""

    source: str  # the version whose styles are due now, "" when none are
    styles: dict[str, Any]  # the record's state, with the new focus


class Locked(NamedTuple):
    """What a record's row held when ``lock_row`` locked it."""

    name: str  # the version it points at, "" for none
    state: str
    styles: dict[str, Any]  # the per-style state (``plan``)


def lock(field: AttachmentField, object_id: object, using: str) -> str | None:
    """Lock the record's row until the transaction ends; return its name, None when gone."""
    row = _lock(field, object_id, using, whole_row=False)
    return None if row is None else str(row[0] or "")  # a NULL name: no version


def lock_row(field: AttachmentField, object_id: object, using: str) -> Locked | None:
    """Lock the record's row until the transaction ends; return what it holds, None when gone."""
    row = _lock(field, object_id, using, whole_row=True)
    if row is None:
        return None
    opts = field.model._meta
    column = cast("models.JSONField[Any]", opts.get_field(field.styles_attname))
    styles = column.from_db_value(row[2], column.get_col(opts.db_table), connections[using])
    # A NULL name: no version; per-style state that is not a dict: none yet.
    return Locked(str(row[0] or ""), str(row[1] or ""), styles if isinstance(styles, dict) else {})


def _lock(
    field: AttachmentField, object_id: object, using: str, *, whole_row: bool
) -> tuple[Any, ...] | None:
    connection = connections[using]
    pk = field.model._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            _lock_sql(field, using, whole_row),
            [pk.get_db_prep_value(pk.to_python(object_id), connection)],
        )
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


@functools.cache
def _lock_sql(field: AttachmentField, using: str, whole_row: bool) -> str:
    """The statement that locks the record's row and reads its name (and state and styles).

    Its parameter is the pk. Raw SQL: a worker takes this lock twice per job, and
    building it through the ORM cost ten times what the database took to run it.
    An upload's save reads only the name: it has no use for the styles' JSON.
    """
    connection = connections[using]
    opts, qn = field.model._meta, connection.ops.quote_name
    state = cast("models.Field[Any, Any]", opts.get_field(field.state_attname))
    styles = cast("models.Field[Any, Any]", opts.get_field(field.styles_attname))
    table, name, state_column, styles_column, pk_column = (
        qn(str(identifier))
        for identifier in (opts.db_table, field.column, state.column, styles.column, opts.pk.column)
    )
    columns = f"{name}, {state_column}, {styles_column}" if whole_row else name
    if connection.features.has_select_for_update:
        return f"SELECT {columns} FROM {table} WHERE {pk_column} = %s FOR UPDATE"
    # SQLite: take the write lock with the first statement, a no-op UPDATE that
    # reads the row too. A read first would have to be upgraded to a write,
    # which SQLite refuses at once, without waiting, when another writer is
    # about to commit.
    return (
        f"UPDATE {table} SET {state_column} = {state_column} "
        f"WHERE {pk_column} = %s RETURNING {columns}"
    )


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


def refocus(
    field: AttachmentField, object_id: object, name: str, focus: Point | None, using: str
) -> Refocused | None:
    """Store the focal point of the version ``name`` and queue the remaking of what it makes due.

    In one commit, and only while the record points at ``name``: a point of
    an image the record no longer shows (a newer upload won) is dropped.

    The styles that follow the focus (``plan.follows_focus``) are due once it
    moves; their job is an ordinary job for the record's current original,
    making only what is due (as ``reprocess_attachments``' jobs do), so the
    old crops are served until the record names the new ones and a re-upload
    meanwhile wins. A record still processing needs no job: its upload's job
    reads the focus when it runs (and queues the record again if the focus
    moved while it ran). Returns None, changing nothing, when the record is
    gone or has moved on from ``name``.
    """
    with transaction.atomic(using=using, savepoint=False):
        if lock(field, object_id, using) != name:
            return None
        rows = field.model._base_manager.using(using).filter(pk=object_id)
        state, styles = rows.values_list(field.state_attname, field.styles_attname).get()
        styles = {key: value for key, value in (styles or {}).items() if key != plan.FOCUS}
        if focus is not None:
            styles[plan.FOCUS] = list(focus)
        rows.update(**{field.styles_attname: styles})
        due = state == READY and bool(field.due(styles))
        if due and field.queued:
            _enqueue(field, object_id, name, (), using)
    return Refocused(source=name if due else "", styles=styles)


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
    if new_record:
        # Nothing to lock: the job's own commit (one statement on PostgreSQL).
        return _enqueue(field, object_id, source, previous, using, new_record=True)
    with transaction.atomic(using=using, savepoint=False):
        if lock(field, object_id, using) != source:
            staged = storage.staging_storage()
            transaction.on_commit(lambda: storage.delete_all(staged, [source]), using=using)
            return None
        return _enqueue(field, object_id, source, previous, using)


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
