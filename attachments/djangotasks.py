"""Django's Tasks framework: ``django.tasks`` (Django 6.0+) or the ``django-tasks`` backport.

The one place that knows where the framework lives: Django 5.2 projects run the
same task backends through the backport, whose API differs only in its import
path and in the names of its exceptions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

if importlib.util.find_spec("django.tasks") is not None:
    from django.tasks import Task, task_backends
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY
    from django.tasks.exceptions import InvalidTask

    SOURCE = "django.tasks"
elif importlib.util.find_spec("django_tasks") is not None:
    from django_tasks import task_backends  # type: ignore[assignment]
    from django_tasks.base import (  # type: ignore[assignment]
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
    )
    from django_tasks.exceptions import (  # type: ignore[assignment]
        InvalidTaskError as InvalidTask,
    )

    SOURCE = "django_tasks"
else:
    raise ImportError(
        "BACKEND='tasks' needs Django's Tasks framework: Django 6.0 or later, "
        "or `pip install django-tasks` on Django 5.2.",
        name=__name__,
    )

# What a backend raises when it refuses a task's queue or priority. Backends
# written for the backport (django-tasks-rq) run on Django 6 too, raising its error.
INVALID_TASK: tuple[type[Exception], ...] = (InvalidTask,)
if SOURCE == "django.tasks" and importlib.util.find_spec("django_tasks") is not None:
    from django_tasks.exceptions import InvalidTaskError

    INVALID_TASK += (InvalidTaskError,)


def task(*, backend: str, queue_name: str) -> Callable[[Callable[..., Any]], Any]:
    """Declare a task of the framework's own ``Task`` class, validated by ``backend``.

    Unlike the framework's ``@task``, whatever the backend's ``task_class``: on
    Django 6, one written for the backport (django-tasks-rq) would make the
    backport's tasks, which Django's own backends (django-tasks-db) refuse.
    """
    return lambda func: Task(func=func, backend=backend, queue_name=queue_name)


__all__ = [
    "INVALID_TASK",
    "SOURCE",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "Task",
    "task",
    "task_backends",
]
