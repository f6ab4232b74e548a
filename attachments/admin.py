"""The job dashboard in Django's admin, and a thumbnail column for other admins.

``JobAdmin`` is the queue seen the way Sidekiq's web UI shows it: counts per
queue and state, throughput, running jobs and recent failures above a
read-only list of jobs, with actions to retry or discard them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import processing, stats, targets
from .exceptions import ConfigurationError
from .models import Job
from .styles import smallest

__all__ = ["JobAdmin", "thumbnail"]

STATE_LABELS = {
    "waiting": _("waiting"),
    "scheduled": _("scheduled"),
    "retrying": _("retrying"),
    "running": _("running"),
    "failed": _("failed"),
}
RECENT = 10  # running jobs and failures listed in the summary
REFRESH = 5  # seconds between reloads when auto-refresh is on


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, Any]]:
        return list(STATE_LABELS.items())

    def queryset(
        self, request: HttpRequest, queryset: models.QuerySet[Job]
    ) -> models.QuerySet[Job]:
        state = self.value() or ""
        if state in STATE_LABELS:
            return queryset.filter(stats.state_filter(state, timezone.now()))
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # not subscriptable at run time
    list_display = [
        "id",
        "record",
        "queue",
        "priority",
        "state_badge",
        "tries",
        "run_at",
        "worker",
        "failed_at",
        "error",
    ]
    list_filter = ["queue", StateFilter]
    search_fields = ["target", "=object_id", "source"]
    # The order workers take jobs in: what runs next comes first.
    ordering = ["-priority", "run_at", "id"]
    actions = ["retry_now", "discard"]
    fieldsets = [
        (None, {"fields": ["target", "object_id", "source", "previous", "queue", "priority"]}),
        (
            _("State"),
            {
                "fields": [
                    "state_badge",
                    "tries",
                    "run_at",
                    "worker",
                    "failed_at",
                    "created_at",
                ]
            },
        ),
        (_("Last error"), {"fields": ["traceback"]}),
    ]

    # Jobs are made by uploads and changed only by the queue's transitions:
    # the change view is read-only for everybody, and change permission means
    # "may retry". Deleting goes through processing.discard, which spares running jobs.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj and obj.locked_by)

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        processing.discard(obj)

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 asks per location (change list or change form); 5.2 does not.
        location = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **location)
        actions.pop("delete_selected", None)  # "Discard" is the delete that spares running jobs
        return actions

    # Columns

    @admin.display(description=_("target"), ordering="target")
    def record(self, job: Job) -> str:
        label = f"{job.target} #{job.object_id}"
        url = self._record_url(job)
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description=_("state"))
    def state_badge(self, job: Job) -> SafeString:
        state = job.state
        return format_html('<span class="job-state {}">{}</span>', state, STATE_LABELS[state])

    @admin.display(description=_("attempts"), ordering="attempts")
    def tries(self, job: Job) -> str:
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description=_("worker"), ordering="locked_by")
    def worker(self, job: Job) -> str:
        if not job.locked_by:
            return self.get_empty_value_display()
        return f"{job.locked_by} ({age(job.locked_at)})" if job.locked_at else job.locked_by

    @admin.display(description=_("error"))
    def error(self, job: Job) -> str:
        return Truncator(error_line(job.last_error)).chars(120) or self.get_empty_value_display()

    @admin.display(description=_("traceback"))
    def traceback(self, job: Job) -> str:
        # Read-only fields show None as "None", not as the empty value.
        if not job.last_error:
            return self.get_empty_value_display()
        return format_html('<pre class="job-traceback">{}</pre>', job.last_error)

    def _record_url(self, job: Job) -> str:
        try:
            model = targets.resolve(job.target).model
        except ConfigurationError:
            return ""
        if not self.admin_site.is_registered(model):
            return ""
        opts = model._meta
        try:
            return reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[job.object_id],
            )
        except NoReverseMatch:
            return ""

    # Actions

    @admin.action(description=_("Retry now"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: models.QuerySet[Job]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        retried = sum(_retry(pk) for pk in ids)
        self._report(request, _retried(retried), skipped=len(ids) - retried)

    @admin.action(description=_("Discard"), permissions=["delete"])
    def discard(self, request: HttpRequest, queryset: models.QuerySet[Job]) -> None:
        jobs = list(queryset)
        for job in jobs:
            if not job.locked_by:
                processing.discard(job)
        running = sum(1 for job in jobs if job.locked_by)
        done = len(jobs) - running
        message = ngettext("Discarded %(count)d job.", "Discarded %(count)d jobs.", done)
        self._report(request, message % {"count": done}, skipped=running)

    def _report(self, request: HttpRequest, message: str, *, skipped: int) -> None:
        self.message_user(request, message, messages.SUCCESS)
        if skipped:
            warning = ngettext(
                "Skipped %(count)d running job: it can be handled once it ends.",
                "Skipped %(count)d running jobs: they can be handled once they end.",
                skipped,
            )
            self.message_user(request, warning % {"count": skipped}, messages.WARNING)

    # Views

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_retry_failed"
        view = self.admin_site.admin_view(self.retry_failed_view)
        # Before the default URLs, whose "<object_id>/" would swallow this one.
        return [path("retry-failed/", view, name=name), *super().get_urls()]

    def retry_failed_view(self, request: HttpRequest) -> HttpResponse:
        """Queue every failed job again (POST only)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        ids = list(Job.objects.failed().values_list("pk", flat=True))
        retried = sum(_retry(pk) for pk in ids)
        self._report(request, _retried(retried), skipped=0)
        return HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
            )
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # "_refresh" is ours; the changelist would reject it as an unknown lookup.
        params = request.GET.copy()
        value = params.pop("_refresh", [""])[-1]
        refresh = min(max(int(value), 2), 300) if value.isdigit() else 0
        request.GET = params  # type: ignore[assignment]  # the changelist reads only GET
        toggled = params.copy()
        if not refresh:
            toggled["_refresh"] = str(REFRESH)
        context: dict[str, Any] = {
            "refresh": refresh,
            "refresh_url": f"?{toggled.urlencode()}",
            "refresh_every": REFRESH,
            "can_retry": self.has_change_permission(request),
        }
        if request.method == "GET":  # actions POST and redirect: no summary to show
            context["summary"] = self.summary()
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"can_retry": self.has_change_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def summary(self) -> dict[str, Any]:
        """Gather the dashboard's figures in four queries, whatever the number of jobs."""
        now = timezone.now()
        counts = stats.queue_counts(now)
        running = Job.objects.filter(stats.state_filter("running", now))
        failed = Job.objects.failed()
        throughput = stats.throughput()
        peak = max((m.processed for m in throughput.minutes), default=0)
        return {
            "states": [(state, STATE_LABELS[state]) for state in stats.STATES],
            "queues": [
                (name, [(row[state], _filter_url(name, state)) for state in stats.STATES])
                for name, row in counts.items()
            ],
            "totals": [
                (sum(row[state] for row in counts.values()), _filter_url(None, state))
                for state in stats.STATES
            ],
            "failed_count": sum(row["failed"] for row in counts.values()),
            "running_count": sum(row["running"] for row in counts.values()),
            "throughput": throughput,
            "rate_minutes": stats.RATE_MINUTES,
            "peak": max(peak, 1),
            "running": [
                (job, age(job.locked_at))
                for job in running.order_by("locked_at").only(
                    "target", "object_id", "queue", "locked_by", "locked_at"
                )[:RECENT]
            ],
            "failures": [
                (job, Truncator(error_line(job.last_error)).chars(160), age(job.failed_at))
                for job in failed.order_by("-failed_at")[:RECENT]
            ],
        }


def _retried(count: int) -> str:
    return ngettext("Queued %(count)d job again.", "Queued %(count)d jobs again.", count) % {
        "count": count
    }


def _retry(pk: int) -> bool:
    """Retry job ``pk`` unless it is running or gone; say whether it was retried."""
    # processing.retry marks the record as processing; with the row locked
    # first, a job that a worker claims or finishes meanwhile is left alone
    # instead of leaving its record marked processing with no job to end it.
    with transaction.atomic(using=router.db_for_write(Job)):
        job = Job.objects.select_for_update().filter(pk=pk, locked_by="").first()
        if job is None:
            return False
        processing.retry(job)
        return True


def _filter_url(queue_name: str | None, state: str) -> str:
    query = {"queue": queue_name, "state": state} if queue_name is not None else {"state": state}
    return f"?{urlencode(query)}"


def error_line(text: str) -> str:
    """Return what a stored traceback says went wrong: its last line, ``Type: message``."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def age(since: datetime | None) -> str:
    """Say how long ago ``since`` was, briefly: ``42 s``, ``3 min``, ``2 h``."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 120:
        return gettext("%(count)d s") % {"count": seconds}
    if seconds < 7200:
        return gettext("%(count)d min") % {"count": seconds // 60}
    return gettext("%(count)d h") % {"count": seconds // 3600}


def thumbnail(
    field_name: str,
    style: str | None = None,
    *,
    size: int = 60,
    description: str | None = None,
) -> Callable[[models.Model], SafeString | None]:
    """Make a ``list_display`` column showing an attachment as a small image.

    ``style`` defaults to the field's smallest style; while the attachment is
    processing (or failed) the placeholder is shown instead.
    """

    @admin.display(description=description or field_name.replace("_", " "))
    def column(obj: models.Model) -> SafeString | None:
        file = getattr(obj, field_name)
        if not file:
            return None
        name = style or getattr(smallest(file.field.styles), "name", None)
        url = file.style_url(name) if name else file.url
        return format_html(
            '<img src="{}" alt="" title="{}" loading="lazy" '
            'style="max-width:{}px;max-height:{}px" data-state="{}">',
            url,
            file.state,
            size,
            size,
            file.state,
        )

    return column
