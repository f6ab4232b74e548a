"""The one place this app reads Django settings.

Everything lives in one dict, ``settings.ATTACHMENTS``; each key is read when it
is used, so ``override_settings`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # STORAGES alias where uploads wait for their job; None means a private
    # FileSystemStorage in STAGING_ROOT.
    "STAGING_STORAGE": None,
    # The folder of that default staging storage; None: "<MEDIA_ROOT>-staging",
    # beside MEDIA_ROOT, so nothing serving MEDIA_ROOT serves staged uploads.
    "STAGING_ROOT": None,
    # Seconds a staged file that no record or job names is kept before the
    # worker deletes it (an upload whose save rolled back). Longer than any
    # transaction, so an upload whose record is being committed is never
    # taken; None keeps them.
    "LEFTOVER_GRACE": 24 * 60 * 60,
    # How jobs run: "database" (the Job table and process_attachments),
    # "tasks" (the Job table, with runners woken by a django.tasks backend:
    # RQ, Celery, django-tasks-db...; Django 6.0+, or 5.2 with django-tasks) or
    # "immediate" (in the request, on commit; for tests and tiny sites).
    "BACKEND": "database",
    # The TASKS alias that BACKEND="tasks" sends its tasks to.
    "TASKS_BACKEND": "default",
    # URL of the image shown for every style while processing; None = built-in.
    "PROCESSING_URL": None,
    # URL of the image shown for every style of a failed attachment; None = built-in.
    "FAILED_URL": None,
    # Seconds a page's status token stays valid (pages older than that stop polling).
    "STATUS_TOKEN_MAX_AGE": 24 * 60 * 60,
    # Upload limits, checked in the request before anything is stored.
    "MAX_BYTES": 50 * 1024 * 1024,
    "MAX_PIXELS": 50_000_000,
    # An animated style (``"animated": True``) keeps at most this many frames
    # of a GIF or WebP, and their pixels (frames x width x height of the
    # original) at most MAX_PIXELS; beyond either the style fails, the
    # first-frame styles are made all the same.
    "MAX_FRAMES": 500,
    # Pillow formats accepted as uploads.
    "FORMATS": ("JPEG", "PNG", "GIF", "WEBP"),
    # Bytes of decoded image a worker's threads may hold at once (each image's
    # share is estimated from its header); an image needing more runs alone.
    # None: no limit. The default lets two 18 MP progressive JPEGs (90 MB
    # each in 4:4:4) decode at once; lower it for small hosts.
    "MEMORY_BUDGET": 256 * 1024 * 1024,
    # Encoder quality of styles that do not set their own.
    "JPEG_QUALITY": 85,
    "WEBP_QUALITY": 80,
    # AVIF's scale runs lower than JPEG's: on a 360x238 photo, 60 (speed 6)
    # came within 0.5 dB PSNR of JPEG at 85 in 53% of its bytes (70: 1 dB
    # better in 74%). One photo: raise it if your images show banding.
    "AVIF_QUALITY": 60,
    # Queue defaults; a field's queue= and max_attempts= override them.
    "QUEUE": "default",
    "MAX_ATTEMPTS": 10,
    # Multiplies the retry delay (Sidekiq's attempts**4 + 15 + jitter seconds).
    "BACKOFF_SCALE": 1.0,
    # Seconds an idle worker waits between looks at the job table. On
    # PostgreSQL (NOTIFY) and SQLite (PRAGMA data_version) workers are woken
    # when a job commits and look at the table at least every second.
    "POLL_INTERVAL": 0.05,
    # A running job's worker refreshes its lock this often (seconds); a lock
    # not refreshed for LOCK_TIMEOUT seconds belongs to a dead worker, and
    # its job is put back in the queue, counting the attempt.
    "HEARTBEAT_INTERVAL": 10,
    "LOCK_TIMEOUT": 300,
    # PostgreSQL: a worker's claim runs as a prepared statement, planned once
    # per connection. False behind a pooler that runs each statement on a
    # different server session (PgBouncer's pool_mode=transaction), where
    # they cannot last; a worker that finds so falls back by itself, warning.
    "PREPARED_STATEMENTS": True,
    # Seconds a stopping worker waits for running jobs before handing them back.
    "SHUTDOWN_TIMEOUT": 30,
    # Failed jobs are kept for the admin; None keeps them until retried or discarded.
    "KEEP_FAILED_DAYS": None,
}


class Settings:
    """Attribute access to ``settings.ATTACHMENTS`` merged over ``DEFAULTS``."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(settings, "ATTACHMENTS", {}).get(name, DEFAULTS[name])


conf = Settings()
