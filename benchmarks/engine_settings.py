"""Settings of ``benchmarks/engines.py`` and the engine workers it starts.

``benchmarks/settings.py`` (the database from the environment) plus every task
engine, one ``TASKS`` alias each; ``ATTACHMENTS_BENCH_TASKS_BACKEND`` picks the
alias a process sends to (empty: our own worker, ``BACKEND="database"``), and
``ATTACHMENTS_BENCH_QUEUE`` the queue, one per run so runs sharing a broker
never meet. ``benchmarks.noopapp`` makes every job a no-op.
"""

from __future__ import annotations

import os

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq", "django_tasks_db", "benchmarks.noopapp"]

QUEUE = os.environ.get("ATTACHMENTS_BENCH_QUEUE", "default")
_alias = os.environ.get("ATTACHMENTS_BENCH_TASKS_BACKEND", "")
ATTACHMENTS = (
    {"BACKEND": "tasks", "TASKS_BACKEND": _alias, "QUEUE": QUEUE} if _alias else {"QUEUE": QUEUE}
)
TASKS = {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [QUEUE]},
    "celery": {
        "BACKEND": "django_tasks_celery.CeleryBackend",
        "QUEUES": [QUEUE],
        "OPTIONS": {"CELERY_APP": "benchmarks.celery_app.app"},
    },
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": [QUEUE]},
}
RQ_QUEUES = {QUEUE: {"URL": os.environ.get("ATTACHMENTS_BENCH_REDIS", "redis://127.0.0.1:6379/0")}}
CELERY_BROKER_URL = os.environ.get("ATTACHMENTS_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
