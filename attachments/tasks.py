"""Processing through a ``django.tasks`` backend the project already runs (Django 6.0+).

With ``ATTACHMENTS["BACKEND"] = "tasks"`` an upload sends ``process_attachment``
to the project's task backend on commit, instead of writing a row in our job
table, and ``process_attachments`` is not needed. Retries are then the task
backend's business: an error a retry could fix is raised to it; a file that is
not a decodable image marks the attachment failed and ends the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.tasks import task
from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY

from . import processing
from .exceptions import InvalidImage
from .models import Job

if TYPE_CHECKING:
    from .fields import AttachmentField


@task
def process_attachment(target: str, object_id: str, source: str, previous: list[str]) -> str:
    """Make and publish every style of one upload; return the outcome's name."""
    # The job row is never saved: it only carries the arguments, as a claimed job would.
    job = Job(target=target, object_id=object_id, source=source, previous="\n".join(previous))
    try:
        return processing.process(job).value
    except InvalidImage as exc:
        processing.mark_failed(job, exc)
        return processing.Outcome.FAILED.value


def send(field: AttachmentField, object_id: object, source: str, previous: tuple[str, ...]) -> None:
    """Send one upload to the project's task backend, in the field's queue."""
    priority = min(max(field.priority, TASK_MIN_PRIORITY), TASK_MAX_PRIORITY)
    process_attachment.using(queue_name=field.queue_name, priority=priority).enqueue(
        field.field_id, str(object_id), source, list(previous)
    )
