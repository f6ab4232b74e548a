"""Turn one staged upload into a published attachment.

``process`` is the whole job: decode the staged original once, make every
style, write original and styles to the field's storage, then flip the record
to *ready* with one conditional UPDATE that succeeds only while the record still
points at this upload. A newer upload or a deleted record makes the job a no-op
that removes what it wrote. ``run`` wraps it in the queue's failure policy.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.apps import apps
from django.db import models, router, transaction

from . import imaging, memory, queue, storage
from .conf import conf
from .exceptions import ConfigurationError, InvalidImage
from .models import Job
from .signals import attachment_failed, attachment_processed

if TYPE_CHECKING:
    from .fields import AttachmentField

logger = logging.getLogger("attachments")


class Outcome(enum.Enum):
    READY = "ready"
    SUPERSEDED = "superseded"
    RETRYING = "retrying"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        """Nothing is left to do: the job's row is to be deleted."""
        return self in (Outcome.READY, Outcome.SUPERSEDED)


def resolve(target: str) -> AttachmentField:
    """Return the field a job's ``target`` (``app_label.model_name.field``) names."""
    from .fields import AttachmentField

    try:
        app_label, model_name, field_name = target.split(".")
        field = apps.get_model(app_label, model_name)._meta.get_field(field_name)
    except (ValueError, LookupError) as exc:
        raise ConfigurationError(f"No attachment field {target!r}: {exc}") from exc
    if not isinstance(field, AttachmentField):
        raise ConfigurationError(f"{target!r} is not an AttachmentField.")
    return field


def _record(field: AttachmentField, job: Job) -> models.QuerySet[models.Model]:
    """The record, as long as it still points at the job's upload."""
    return field.model._base_manager.filter(pk=job.object_id, **{field.attname: job.source})


def process(job: Job) -> Outcome:
    """Make and publish every style of ``job.source``; see the module docstring."""
    field = resolve(job.target)
    record = _record(field, job)
    staged = storage.staging_storage()
    state = record.values_list(field.state_attname, flat=True).first()
    if state is None:
        storage.delete_all(staged, [job.source])
        return Outcome.SUPERSEDED
    if state == "ready":
        # Published by a worker that died before it could finish up: only the
        # clean-up is left to do, and it is safe to repeat.
        _clean_up(field, job)
        return Outcome.READY
    styles = list(field.styles.values())
    names = storage.version_names(job.source, styles)
    with staged.open(job.source, "rb") as original:
        renditions = imaging.render(
            original,
            styles,
            max_pixels=conf.MAX_PIXELS,
            jpeg_quality=conf.JPEG_QUALITY,
            webp_quality=conf.WEBP_QUALITY,
            budget=memory.shared(conf.MEMORY_BUDGET),
        )
        original.seek(0)
        storage.put(field.storage, job.source, original)
    for style, name in zip(styles, names[1:], strict=True):
        storage.put(field.storage, name, renditions[style.name].data)
    if not record.update(**{field.state_attname: "ready"}):
        storage.delete_all(field.storage, names)
        storage.delete_all(staged, [job.source])
        return Outcome.SUPERSEDED
    _clean_up(field, job)
    attachment_processed.send(
        sender=field.model, instance=None, object_id=job.object_id, field=field, name=job.source
    )
    return Outcome.READY


def _clean_up(field: AttachmentField, job: Job) -> None:
    """After publishing: drop the staged original and the version this one replaced."""
    storage.delete_all(storage.staging_storage(), [job.source])
    for name in job.previous_names:
        if name != job.source:
            storage.delete_all(field.storage, storage.version_names(name, field.styles.values()))


def run(job: Job) -> Outcome:
    """Process a claimed job and record a failure in the queue: retry later, or failed.

    A job that is ``done`` is left for the caller to delete (the worker folds
    that into its next claim).
    """
    try:
        outcome = process(job)
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
    return _change(job, queue.retry, "processing", was="failed")


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
            field.enqueue(job.object_id, source, previous)
            return
        if (
            outcome in (Outcome.READY, Outcome.FAILED)
            and getattr(instance, field.attname) == source
        ):
            setattr(instance, field.state_attname, outcome.value)

    transaction.on_commit(run_now, using=using)
