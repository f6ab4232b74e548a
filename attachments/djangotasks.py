"""Django's Tasks framework: ``django.tasks`` (Django 6.0+) or the ``django-tasks`` backport.

The one place that knows where the framework lives: Django 5.2 projects run the
same task backends through the backport, whose API differs only in its import
path and in the names of two exceptions.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("django.tasks") is not None:
    from django.tasks import task, task_backends
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend

    SOURCE = "django.tasks"
elif importlib.util.find_spec("django_tasks") is not None:
    from django_tasks import task, task_backends  # type: ignore[no-redef]
    from django_tasks.base import (  # type: ignore[no-redef]
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
    )
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskBackendError as InvalidTaskBackend,
    )
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskError as InvalidTask,
    )

    SOURCE = "django_tasks"
else:  # pragma: no cover - exercised by projects without either
    raise ImportError(
        "BACKEND='tasks' needs Django's Tasks framework: Django 6.0 or later, "
        "or `pip install django-tasks` on Django 5.2.",
        name=__name__,
    )

__all__ = [
    "SOURCE",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "task",
    "task_backends",
]
