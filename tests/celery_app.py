"""The Celery app of the engine tests: ``celery -A tests.celery_app worker``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("attachments_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Imports attachments.tasks, which registers its tasks with this app.
app.autodiscover_tasks()
