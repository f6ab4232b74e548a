"""The Celery app of ``benchmarks/engines.py``: ``celery -A benchmarks.celery_app worker``."""

from __future__ import annotations

from celery import Celery

app = Celery("attachments_bench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
