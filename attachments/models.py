"""The job queue table.

One row is one attachment version waiting to be (re)processed. Its state is
implicit in its columns, as in delayed_job: *failed* when ``failed_at`` is set,
*running* when ``locked_by`` is set, *scheduled* when ``run_at`` is in the
future, otherwise *waiting*. Finished jobs are deleted.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobQuerySet(models.QuerySet["Job"]):
    def pending(self) -> JobQuerySet:
        """Jobs that are neither running nor failed."""
        return self.filter(failed_at__isnull=True, locked_by="")

    def due(self) -> JobQuerySet:
        """Pending jobs whose time has come, in the order workers take them."""
        return (
            self.pending().filter(run_at__lte=timezone.now()).order_by("-priority", "run_at", "id")
        )

    def running(self) -> JobQuerySet:
        return self.exclude(locked_by="")

    def failed(self) -> JobQuerySet:
        return self.filter(failed_at__isnull=False)

    def for_target(self, target: str, object_id: object) -> JobQuerySet:
        return self.filter(target=target, object_id=str(object_id))


class Job(models.Model):
    """Make the styles of one uploaded original and publish them."""

    queue = models.CharField(_("queue"), max_length=100, default="default")
    priority = models.IntegerField(_("priority"), default=0)
    run_at = models.DateTimeField(_("run at"), default=timezone.now)
    # What to process: "app_label.model_name.field_name", the record's pk and
    # the staged original's name. A job whose record no longer points at
    # ``source`` has been superseded and does nothing.
    target = models.CharField(_("target"), max_length=255)
    object_id = models.CharField(_("object id"), max_length=255)
    source = models.CharField(_("source"), max_length=500)
    # Versions this upload replaces, one name a line: deleted once it is ready.
    # More than one when uploads followed each other faster than jobs ran.
    previous = models.TextField(_("previous"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveIntegerField(_("max attempts"), default=10)
    locked_by = models.CharField(_("locked by"), max_length=255, blank=True)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        # The claim's indexes differ by database (partial ones where there
        # are partial indexes): migrations 0001 and 0004 make them.
        indexes = [
            models.Index(fields=["target", "object_id"], name="attachments_job_target"),
        ]

    def __str__(self) -> str:
        return f"{self.target}#{self.object_id} ({self.source})"

    @property
    def previous_names(self) -> list[str]:
        return [name for name in self.previous.splitlines() if name]

    @property
    def state(self) -> str:
        """One of ``failed``, ``running``, ``scheduled``, ``retrying``, ``waiting``."""
        if self.failed_at:
            return "failed"
        if self.locked_by:
            return "running"
        if self.run_at > timezone.now():
            return "retrying" if self.attempts else "scheduled"
        return "waiting"


class WorkerStat(models.Model):
    """How many jobs one worker finished in one minute, for the admin's throughput figures.

    Finished jobs are deleted, so their count lives here. Each worker writes
    only its own rows, with absolute totals, so concurrent workers never
    contend for a row.
    """

    worker = models.CharField(_("worker"), max_length=255)
    minute = models.DateTimeField(_("minute"))
    processed = models.PositiveIntegerField(_("processed"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)

    class Meta:
        verbose_name = _("worker stat")
        verbose_name_plural = _("worker stats")
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "minute"], name="attachments_workerstat_worker_minute"
            ),
        ]
        # The dashboard and pruning read by time, across workers.
        indexes = [models.Index(fields=["minute"], name="attachments_workerstat_minute")]

    def __str__(self) -> str:
        return (
            f"{self.worker} {self.minute:%Y-%m-%d %H:%M}: {self.processed} ({self.failed} failed)"
        )


class Alarm(models.Model):
    """A wake-up sent to a task backend for later, of which at most one is pending.

    With ``BACKEND="tasks"`` nothing runs between tasks, so housekeeping is a
    task too, sent with ``run_after=due_at``. Whoever moves ``due_at`` on (one
    conditional UPDATE, from a past time to a future one) sends it: however
    many runners ask at once, one is pending.
    """

    HOUSEKEEPING = "housekeeping"

    name = models.CharField(_("name"), max_length=100, primary_key=True)
    due_at = models.DateTimeField(_("due at"))

    class Meta:
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")

    def __str__(self) -> str:
        return f"{self.name} at {self.due_at:%Y-%m-%d %H:%M:%S}"
