"""Turn one staged upload into a published attachment.

``process`` is the whole job: decode the original once, make every style it
lacks (``renditions``), write them (and a staged original) to the field's
storage, then flip the record to *ready* with its per-style state, under its
row lock, only while the record still points at this upload. A newer upload or
a deleted record makes the job a no-op that removes what it wrote. ``run``
wraps it in the queue's failure policy.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import models, router, transaction

from . import imaging, plan, previews, queue, renditions, storage, transport, versions
from .exceptions import ConfigurationError, InvalidImage
from .models import Job
from .signals import attachment_failed, attachment_processed
from .targets import PROCESSING, READY, resolve

if TYPE_CHECKING:
    from .fields import AttachmentField

logger = logging.getLogger("attachments")


class Outcome(enum.Enum):
    READY = "ready"
    SUPERSEDED = "superseded"
    RETRYING = "retrying"
    FAILED = "failed"
    # The worker handed the job back (shutdown timeout) or lost it (no
    # heartbeat) while it ran: whoever runs it next settles it.
    HANDED_BACK = "handed back"

    @property
    def done(self) -> bool:
        """Nothing is left to do: the job's row is to be deleted."""
        return self in (Outcome.READY, Outcome.SUPERSEDED)


def _record(field: AttachmentField, job: Job) -> models.QuerySet[models.Model]:
    """The record, as long as it still points at the job's upload."""
    return field.model._base_manager.filter(pk=job.object_id, **{field.attname: job.source})


def process(job: Job) -> Outcome:
    """Make and publish the styles ``job.source`` lacks; see the module docstring.

    For an upload that is every style (but those made in the request), and
    the original is published with them. For a published original (a job of
    ``reprocess_attachments``, or one whose worker died after publishing) it is
    the styles not made from their current declaration, made from the published
    original, each replacing its older file only once the record names the new one.
    """
    field = resolve(job.target)
    record = _record(field, job)
    staged = storage.staging_storage()
    row = record.values_list(field.state_attname, field.styles_attname).first()
    if row is None:
        storage.delete_all(staged, [job.source])
        return Outcome.SUPERSEDED
    published = row[0] == READY
    due = [field.styles[name] for name in field.due(row[1])]
    if published and not due:
        _clean_up(field, job)
        return Outcome.READY
    # A page shows the preview while it waits: made from the job's one decode and
    # published before any style, unless the request made it from an embedded
    # thumbnail. Not when processing in the request (a job with no row): no page waits.
    waiting = not published and job.pk is not None and plan.preview(row[1]) is None
    decoded = _preview_publisher(field, job) if waiting else None
    with (field.storage if published else staged).open(job.source, "rb") as original:
        made = renditions.make(
            field, job.source, original, due, decoded=decoded, focus=plan.focus(row[1])
        )
        if not published:
            storage.put_staged(staged, field.storage, job.source, original)
            made.written.append(job.source)
    replaced = _publish(field, job, made)
    if replaced is None:
        storage.delete_all(field.storage, made.written)
        storage.delete_all(staged, [job.source])
        return Outcome.SUPERSEDED
    storage.delete_all(field.storage, replaced)
    _clean_up(field, job)
    attachment_processed.send(
        sender=field.model, instance=None, object_id=job.object_id, field=field, name=job.source
    )
    return Outcome.READY


def _preview_publisher(field: AttachmentField, job: Job) -> Callable[[imaging.Shrink], None]:
    """What publishes the preview from the job's decode: see ``publish_preview``."""

    def publish(shrink: imaging.Shrink) -> None:
        publish_preview(field, job, previews.encode(shrink(previews.SIDE)))

    return publish


def publish_preview(field: AttachmentField, job: Job, preview: str) -> bool:
    """Show ``preview`` on the record while it still points at the job's upload, processing.

    One short transaction under the record's row lock (the lock ``_publish``
    and a new upload take), so it never lands on a newer upload's record, and
    never drops entries another job wrote meanwhile. Returns whether it did.
    """
    using = router.db_for_write(field.model)
    with transaction.atomic(using=using):
        row = versions.lock_row(field, job.object_id, using)
        if row is None or row.name != job.source or row.state != PROCESSING:
            return False
        rows = field.model._base_manager.using(using).filter(pk=job.object_id)
        rows.update(**{field.styles_attname: {**row.styles, plan.PREVIEW: preview}})
    return True


def _publish(field: AttachmentField, job: Job, made: renditions.Made) -> list[str] | None:
    """Show what was made on the record, if it still points at the job's upload.

    Under the record's row lock, so that two jobs publishing styles of one
    version (an upload's and a reprocess's) never drop each other's entries,
    and a record that moved on to a newer upload is never touched. Returns the
    files of older declarations no longer named, or None when superseded.
    """
    using = router.db_for_write(field.model)
    with transaction.atomic(using=using):
        row = versions.lock_row(field, job.object_id, using)
        if row is None or row.name != job.source:
            return None
        if job.pk is not None and not queue.holds(job):
            # Handed back meanwhile: its next run publishes, from the staged
            # original this one must leave alone (what it wrote, the next
            # run writes again under the same names).
            raise queue.NotHeld(f"Job {job.pk} was handed back while it ran.")
        rows = field.model._base_manager.using(using).filter(pk=job.object_id)
        state, replaced = made.merge(row.styles)
        rows.update(**{field.state_attname: READY, field.styles_attname: state})
        if field.queued and field.due(state, only=list(made.entries)):
            # The focal point moved while these were made (a declaration
            # changed under us works the same): what they show is already
            # out of date, so the record goes round once more.
            versions.enqueue(field, job.object_id, job.source, using=using)
    return replaced


def _clean_up(field: AttachmentField, job: Job) -> None:
    """After publishing: drop the staged original and the versions this one replaced."""
    storage.delete_all(storage.staging_storage(), [job.source])
    for name in job.previous_names:
        if name != job.source:
            storage.delete_all(field.storage, storage.version_files(field.storage, name))


def run(job: Job) -> Outcome:
    """Process a claimed job and record a failure in the queue: retry later, or failed.

    A job that is ``done`` is left for the caller to delete (the worker folds
    that into its next claim).
    """
    try:
        outcome = process(job)
    except queue.NotHeld:
        return Outcome.HANDED_BACK
    except Exception as exc:
        if _superseded(job):
            # The record moved on while we worked (and may have taken our
            # staged file with it): nothing is lost by dropping the job.
            return Outcome.SUPERSEDED
        permanent = isinstance(exc, InvalidImage | ConfigurationError)
        if not queue.fail(job, exc, permanent=permanent):
            logger.warning("Job %s failed (attempt %s), will retry: %s", job.pk, job.attempts, exc)
            return Outcome.RETRYING
        mark_failed(job, exc)
        return Outcome.FAILED
    return outcome


def _superseded(job: Job) -> bool:
    try:
        return not _record(resolve(job.target), job).exists()
    except ConfigurationError:
        return False


def mark_failed(job: Job, exc: BaseException) -> None:
    """Show a job's last failure on its record and tell ``attachment_failed`` receivers."""
    logger.error("Job %s failed for good: %s", job.pk, exc)
    # Only a record still waiting for this upload: never one already published.
    field = _set_state(job, "failed", was="processing")
    if field is None:
        return
    attachment_failed.send(
        sender=field.model,
        instance=None,
        object_id=job.object_id,
        field=field,
        name=job.source,
        error=exc,
    )


def settle_lost(job: Job, error: BaseException) -> Outcome:
    """Settle a job whose worker was lost on its last attempt, which the queue kept as failed.

    The worker may have died after publishing the upload, leaving only the
    clean-up: then that is done and the job goes (READY). Otherwise the
    record shows the failure (FAILED).
    """
    with contextlib.suppress(ConfigurationError):
        field = resolve(job.target)
        if _record(field, job).filter(**{field.state_attname: "ready"}).exists():
            _clean_up(field, job)
            queue.discard(job)
            return Outcome.READY
    mark_failed(job, error)
    return Outcome.FAILED


def retry(job: Job) -> bool:
    """Run a failed or waiting job again now, showing a failed record as processing meanwhile.

    A record already published stays ready: the job only cleans up. Returns
    False, changing nothing, when the job is running or already gone.
    """
    if not _change(job, queue.retry, "processing", was="failed"):
        return False
    transport.wake(job)
    return True


def discard(job: Job) -> bool:
    """Give up on a job that is not running; a record still waiting for it shows *failed*.

    Left *processing*, the record would show a placeholder for good (and the
    worker would queue its upload again, taking it for an orphan). Returns
    False, changing nothing, when the job is running or already gone.
    """
    return _change(job, queue.discard, "failed", was="processing")


def _change(job: Job, transition: Callable[[Job], bool], state: str, *, was: str) -> bool:
    """Apply a queue ``transition`` and, with it, show ``state`` on a record that is ``was``."""
    with transaction.atomic(using=router.db_for_write(Job)):
        if not transition(job):
            return False
        _set_state(job, state, was=was)
    return True


def _set_state(job: Job, state: str, *, was: str) -> AttachmentField | None:
    """Show ``state`` on the job's record while it points at the job's upload and is ``was``.

    Returns the field, or None when the job names no attachment field.
    """
    try:
        field = resolve(job.target)
    except ConfigurationError:
        return None
    _record(field, job).filter(**{field.state_attname: was}).update(**{field.state_attname: state})
    return field


def run_after_commit(
    field: AttachmentField,
    instance: models.Model,
    source: str,
    previous: tuple[str, ...],
    *,
    using: str,
) -> None:
    """Process an upload in this process once its record is committed.

    If that fails for a reason a retry could fix, the upload is queued as a job
    instead, so nothing is lost when, say, the storage is briefly down.
    """
    job = Job(
        target=field.field_id,
        object_id=str(instance.pk),
        source=source,
        previous="\n".join(previous),
    )

    def run_now() -> None:
        try:
            outcome = process(job)
        except InvalidImage as exc:
            mark_failed(job, exc)
            outcome = Outcome.FAILED
        except Exception:
            logger.exception("Processing %s in the request failed; queueing it.", source)
            versions.enqueue(field, job.object_id, source, previous)
            return
        if (
            outcome in (Outcome.READY, Outcome.FAILED)
            and getattr(instance, field.attname) == source
        ):
            setattr(instance, field.state_attname, outcome.value)
            made = _record(field, job).values_list(field.styles_attname, flat=True).first()
            setattr(instance, field.styles_attname, made if made is not None else {})

    transaction.on_commit(run_now, using=using)
