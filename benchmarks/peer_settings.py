"""Settings of ``benchmarks/peers.py`` and the workers it starts (PostgreSQL).

``benchmarks/settings.py`` plus the database-backed peers, django-tasks-db and
procrastinate (their tables live in the same database as ours), and
``benchmarks.peerapp``, whose "stamp" job every worker runs.
"""

from __future__ import annotations

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django_tasks_db",
    "procrastinate.contrib.django",
    "benchmarks.peerapp",
]
TASKS = {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["attachments_bench"]},
}
ROOT_URLCONF = "benchmarks.peerapp.urls"
