"""Uploads left *processing* with no job to finish them, found and queued again.

A save commits its record and its job together (``versions.commit_once``),
except where the job table lives on another database than the record: there
the record commits first and its job right after, and a web process killed in
between leaves an upload that no worker will ever see (as could a save made
before this app committed them together). The
worker looks for such records now and then: an attachment still processing,
no job naming its record, and a staged original older than ``older_than``
(so that an upload whose job is just being committed is left alone; if one
slips through anyway, the queue's coalescing keeps a single job).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.files.storage import Storage
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from . import storage, targets, versions
from .models import Job

if TYPE_CHECKING:
    pass

logger = logging.getLogger("attachments")


def requeue(older_than: timedelta) -> int:
    """Queue a job for every orphaned upload; return how many were found."""
    staged = storage.staging_storage()
    cutoff = timezone.now() - older_than
    found = 0
    for field in targets.fields():
        if not field.process_in_background:
            continue
        jobs = Job.objects.filter(
            target=field.field_id, object_id=Cast(OuterRef("pk"), output_field=CharField())
        )
        orphans = (
            field.model._base_manager.filter(**{field.state_attname: "processing"})
            .exclude(Exists(jobs))
            .values_list("pk", field.attname)
        )
        for pk, name in list(orphans):  # few; and no open cursor while enqueueing
            if not _staged_before(staged, name, cutoff):
                continue
            logger.warning("%s#%s was left processing without a job; queueing it.", field, pk)
            versions.enqueue(field, pk, name)
            found += 1
    return found


def _staged_before(staged: Storage, name: str, cutoff: datetime) -> bool:
    try:
        return staged.get_modified_time(name) <= cutoff
    except Exception:
        # Cannot tell (a storage without times, S3's 404 or outage...), or gone
        # from staging: queue it. The job then fails with the storage's error,
        # visibly, instead of the record waiting forever.
        return True
