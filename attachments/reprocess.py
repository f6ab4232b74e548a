"""Make the styles published records lack, after styles were added or changed.

A record lacks a style when its ``<name>_styles`` state has no entry made from
the style's current declaration (``plan.due``): that comparison is all there is
to "what is left to do", so a run stopped anywhere and started again skips what
is done. Each record is handed to ``processing.process`` (in this process, or as
a job for the workers below new uploads' priority), which makes the styles from
the published original, names the new files only once they are stored, under
the record's row lock and only while it still points at that original (a
re-upload meanwhile wins), then deletes the files they replace.
"""

from __future__ import annotations

import logging
import queue as queues
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connections, router, transaction

from . import plan, processing, queue, targets, transport
from .conf import conf
from .exceptions import ConfigurationError
from .fields import AttachmentField
from .models import Job
from .targets import READY

__all__ = ["PRIORITY_DROP", "Reprocess", "Summary", "select"]

logger = logging.getLogger("attachments")

# Reprocessing jobs go this far below their field's uploads, so a backfill of
# thousands of records never keeps a new upload waiting.
PRIORITY_DROP = 1


@dataclass
class Summary:
    """What a run did, by record."""

    total: int = 0  # records looked at
    done: int = 0  # styles made (inline) or job queued
    skipped: int = 0  # nothing to do: made already, queued already, or gone
    errors: dict[str, str] = field(default_factory=dict)  # "field_id#pk" -> error
    queued: bool = False

    @property
    def failed(self) -> int:
        return len(self.errors)

    def __str__(self) -> str:
        verb = "queued" if self.queued else "made"
        return (
            f"{self.total} records: {self.done} {verb}, {self.skipped} had nothing to do, "
            f"{self.failed} failed."
        )


def select(labels: Sequence[str]) -> list[AttachmentField]:
    """Return the fields named ``app_label.model.field`` (every attachment field if none)."""
    if not labels:
        return targets.fields()
    return [targets.resolve(label.lower()) for label in labels]


@dataclass
class Reprocess:
    """One run over ``fields``; ``run`` returns its ``Summary``."""

    fields: Sequence[AttachmentField]
    styles: Sequence[str] = ()  # only records lacking one of these
    missing_only: bool = False  # only styles with no file at all, not older ones
    ids: Sequence[str] = ()
    inline: bool = False
    concurrency: int = 1
    batch_size: int = 500
    # Called after each record with the summary so far (a progress bar, a log line).
    progress: Callable[[Summary], None] = lambda summary: None

    def __post_init__(self) -> None:
        declared = {name for attachment in self.fields for name in attachment.styles}
        unknown = sorted(set(self.styles) - declared)
        if unknown:
            raise ConfigurationError(
                f"No style {', '.join(unknown)} in {', '.join(f.field_id for f in self.fields)}; "
                f"declared: {', '.join(sorted(declared)) or 'none'}."
            )
        # With --style, the fields that declare none of them have nothing to do.
        self.fields = [f for f in self.fields if not self.styles or self._only(f)]

    def _only(self, attachment: AttachmentField) -> list[str]:
        return [name for name in self.styles if name in attachment.styles]

    def count(self) -> int:
        """How many records the run will look at."""
        return sum(self._records(attachment).count() for attachment in self.fields)

    def run(self) -> Summary:
        """Go through every selected record, batch by batch; see the module docstring."""
        summary = Summary(queued=not self.inline)
        for attachment in self.fields:
            only = self._only(attachment)
            for batch in self._batches(attachment):
                due = []
                for pk, name, state in batch:
                    if attachment.due(state, missing_only=self.missing_only, only=only):
                        due.append((pk, name))
                    else:
                        summary.total += 1
                        summary.skipped += 1
                        self.progress(summary)
                if self.inline or not attachment.queued:
                    self._make(attachment, due, summary)
                else:
                    self._enqueue(attachment, due, summary)
        return summary

    def _records(self, attachment: AttachmentField) -> Any:
        records = attachment.model._base_manager.filter(**{attachment.state_attname: READY})
        if self.ids:
            records = records.filter(pk__in=list(self.ids))
        return records

    def _batches(self, attachment: AttachmentField) -> Iterator[list[tuple[Any, str, Any]]]:
        """The selected records in primary key order, a batch at a time (keyset, not OFFSET)."""
        columns = ("pk", attachment.attname, attachment.styles_attname)
        records = self._records(attachment).order_by("pk").values_list(*columns)
        last = None
        while True:
            batch = list(
                (records if last is None else records.filter(pk__gt=last))[: self.batch_size]
            )
            if not batch:
                return
            yield batch
            last = batch[-1][0]

    def _make(
        self, attachment: AttachmentField, due: list[tuple[Any, str]], summary: Summary
    ) -> None:
        """Process ``due`` records here, on ``concurrency`` threads."""
        if not due:
            return
        work: queues.SimpleQueue[tuple[Any, str] | None] = queues.SimpleQueue()
        for record in due:
            work.put(record)
        lock = threading.Lock()

        def make_all() -> None:
            try:
                while (record := work.get()) is not None:
                    outcome, error = _make_one(attachment, *record)
                    with lock:
                        summary.total += 1
                        if error:
                            summary.errors[f"{attachment.field_id}#{record[0]}"] = error
                        elif outcome is processing.Outcome.READY:
                            summary.done += 1
                        else:
                            summary.skipped += 1
                        self.progress(summary)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connections.close_all()

        threads = min(self.concurrency, len(due))
        for _ in range(threads):
            work.put(None)
        if threads <= 1:
            make_all()
            return
        started = [threading.Thread(target=make_all, daemon=True) for _ in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()

    def _enqueue(
        self, attachment: AttachmentField, due: list[tuple[Any, str]], summary: Summary
    ) -> None:
        """Queue a job per record in ``due`` that has none yet, in one commit."""
        # A record with a job waiting or running needs no other: that job
        # makes every style its record lacks when it runs.
        using = router.db_for_write(Job)
        with transaction.atomic(using=using):
            queued = queue.enqueue_missing(
                target=attachment.field_id,
                sources=due,
                queue=attachment.queue_name,
                priority=attachment.priority - PRIORITY_DROP,
                max_attempts=attachment.max_attempts or conf.MAX_ATTEMPTS,
            )
            if queued and conf.BACKEND == "tasks":
                # A task backend's runners hear of a job only by its task, sent on
                # commit. A record's job that was waiting already may get a second
                # one: harmless, a delivery claims its job once (queue.claim_job).
                waiting = Job.objects.using(using).filter(
                    target=attachment.field_id,
                    object_id__in=[str(pk) for pk, _ in due],
                    locked_by="",
                    failed_at__isnull=True,
                )
                for job in waiting:
                    transport.wake(job, using=using)
        summary.total += len(due)
        summary.done += queued
        summary.skipped += len(due) - queued
        self.progress(summary)


def _make_one(
    attachment: AttachmentField, pk: Any, name: str
) -> tuple[processing.Outcome | None, str]:
    """Make what the record lacks here; return the outcome and the error, if any."""
    close_old_connections()
    job = Job(target=attachment.field_id, object_id=str(pk), source=name)
    try:
        outcome = processing.process(job)
    except Exception as exc:
        logger.warning("Reprocessing %s#%s failed: %s", attachment.field_id, pk, exc)
        return None, f"{type(exc).__name__}: {exc}"
    state = (
        attachment.model._base_manager.filter(pk=pk)
        .values_list(attachment.styles_attname, flat=True)
        .first()
    )
    made = plan.made(state)
    failed = [made[s].error for s in attachment.styles if s in made and not made[s].ok]
    return outcome, "; ".join(failed)
