"""System checks for the project-wide settings; fields check themselves."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections, router
from django.db.models import Count, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.urls import NoReverseMatch, reverse

from .conf import DEFAULTS, conf

_HAS_TASKS = any(importlib.util.find_spec(name) for name in ("django.tasks", "django_tasks"))


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    configured = getattr(settings, "ATTACHMENTS", {})
    if not isinstance(configured, dict):
        return [checks.Error("ATTACHMENTS must be a dict.", id="attachments.E101")]
    unknown = sorted(set(configured) - set(DEFAULTS))
    if unknown:
        errors.append(
            checks.Error(
                f"Unknown ATTACHMENTS setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="attachments.E102",
            )
        )
    backends = ("database", "immediate", "tasks")
    if conf.BACKEND not in backends:
        errors.append(
            checks.Error(
                f"ATTACHMENTS['BACKEND'] is {conf.BACKEND!r}.",
                hint=f"Use one of {', '.join(map(repr, backends))}.",
                id="attachments.E103",
            )
        )
    elif conf.BACKEND == "tasks":
        errors += _check_task_backend()
    alias = conf.STAGING_STORAGE
    if alias and alias not in settings.STORAGES:
        errors.append(
            checks.Error(
                f"ATTACHMENTS['STAGING_STORAGE'] is {alias!r}, which is not in STORAGES.",
                hint="Add it to STORAGES or leave STAGING_STORAGE unset.",
                id="attachments.E104",
            )
        )
    for key in ("MAX_BYTES", "MAX_PIXELS", "MAX_ATTEMPTS"):
        value = getattr(conf, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                checks.Error(
                    f"ATTACHMENTS[{key!r}] must be a positive integer, not {value!r}.",
                    id="attachments.E105",
                )
            )
    errors.extend(_check_staging())
    for key in (
        "POLL_INTERVAL",
        "HEARTBEAT_INTERVAL",
        "LOCK_TIMEOUT",
        "SHUTDOWN_TIMEOUT",
        "BACKOFF_SCALE",
    ):
        value = getattr(conf, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                checks.Error(
                    f"ATTACHMENTS[{key!r}] must be a positive number, not {value!r}.",
                    id="attachments.E106",
                )
            )
    if not errors and conf.LOCK_TIMEOUT < conf.HEARTBEAT_INTERVAL * 3:
        errors.append(
            checks.Error(
                "ATTACHMENTS['LOCK_TIMEOUT'] must be well over HEARTBEAT_INTERVAL, or the jobs "
                "of live workers would be taken from them.",
                hint="Keep LOCK_TIMEOUT at least three times HEARTBEAT_INTERVAL.",
                id="attachments.E107",
            )
        )
    budget = conf.MEMORY_BUDGET
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
    ):
        errors.append(
            checks.Error(
                f"ATTACHMENTS['MEMORY_BUDGET'] must be None or a number of bytes, not {budget!r}.",
                id="attachments.E109",
            )
        )
    if not isinstance(conf.PREPARED_STATEMENTS, bool):
        errors.append(
            checks.Error(
                "ATTACHMENTS['PREPARED_STATEMENTS'] must be True or False, "
                f"not {conf.PREPARED_STATEMENTS!r}.",
                id="attachments.E110",
            )
        )
    keep = conf.KEEP_FAILED_DAYS
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, int | float) or keep < 0
    ):
        errors.append(
            checks.Error(
                f"ATTACHMENTS['KEEP_FAILED_DAYS'] must be None or a number of days, not {keep!r}.",
                id="attachments.E108",
            )
        )
    grace = conf.LEFTOVER_GRACE
    if grace is not None and (
        isinstance(grace, bool) or not isinstance(grace, int | float) or grace <= 0
    ):
        errors.append(
            checks.Error(
                "ATTACHMENTS['LEFTOVER_GRACE'] must be None or a number of seconds, "
                f"not {grace!r}.",
                id="attachments.E133",
            )
        )
    return errors


def _check_staging() -> list[checks.CheckMessage]:
    """Where staged uploads live: a folder of its own that nothing serves."""
    from .leftovers import shared_with
    from .storage import place, served_folders, staging_root, staging_storage, within

    root = conf.STAGING_ROOT
    if root is not None and not isinstance(root, str | os.PathLike):
        return [
            checks.Error(
                f"ATTACHMENTS['STAGING_ROOT'] must be a folder's path, not {root!r}.",
                id="attachments.E131",
            )
        ]
    if root and conf.STAGING_STORAGE:
        return [
            checks.Error(
                "ATTACHMENTS sets both STAGING_ROOT and STAGING_STORAGE.",
                hint="STAGING_ROOT is the folder of the default staging storage; set the "
                "location in the STAGING_STORAGE's OPTIONS instead, or drop STAGING_STORAGE.",
                id="attachments.E132",
            )
        ]
    if conf.STAGING_STORAGE and conf.STAGING_STORAGE not in settings.STORAGES:
        return []  # E104
    errors: list[checks.CheckMessage] = []
    media = str(settings.MEDIA_ROOT)
    if not (root or conf.STAGING_STORAGE) and media and os.path.ismount(os.path.realpath(media)):
        errors.append(
            checks.Warning(
                f"MEDIA_ROOT is a mount point, so the default staging folder beside it, "
                f"{staging_root()}, is not on that volume: uploads waiting for the worker "
                "would be lost with the container or host.",
                hint="Set ATTACHMENTS['STAGING_ROOT'] to a folder on persistent storage "
                "that nothing serves.",
                id="attachments.W031",
            )
        )
    staged = staging_storage()
    mine = place(staged)
    if mine is None:
        return errors
    served = [what for what, folder in served_folders().items() if within(mine, folder)]
    if served:
        errors.append(
            checks.Warning(
                f"The staging storage lies in {', '.join(served)}: whatever serves that "
                "folder serves uploads before they are checked, and failed ones for good.",
                hint="Stage uploads in a folder nothing serves: leave STAGING_ROOT unset "
                "(a folder beside MEDIA_ROOT) or point it elsewhere.",
                id="attachments.W030",
            )
        )
    shared = shared_with(staged)
    if shared:
        errors.append(
            checks.Error(
                f"The staging storage also holds {', '.join(shared)}, whose files no record "
                "names as staged: the worker would take them for leftovers, so it deletes none.",
                hint="Give staging a folder (or bucket prefix) of its own.",
                id="attachments.E130",
            )
        )
    return errors


@checks.register(checks.Tags.urls)
def check_status_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Is the status endpoint routed? Without it placeholders never swap for images."""
    try:
        reverse("attachments:status", args=["token"])
    except NoReverseMatch:
        return [
            checks.Warning(
                "The status endpoint 'attachments:status' cannot be reversed: pages and the "
                "admin keep showing the placeholder of an upload until they are reloaded.",
                hint='Add path("attachments/", include("attachments.urls")) to your URLconf.',
                id="attachments.W040",
            )
        ]
    return []


@checks.register(checks.Tags.database)
def check_queue_database(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Can the database queue claim on its database? Run by ``migrate``, ``check --database``
    and ``process_attachments``."""
    from .models import Job

    using = router.db_for_write(Job)
    if conf.BACKEND != "database" or using not in (databases or ()):
        return []
    return queue_database_errors(connections[using])


@checks.register()
def check_queue_isolation(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Does the queue's MySQL connection keep the isolation level claims expect? (Settings only.)"""
    from .models import Job

    if conf.BACKEND != "database":
        return []
    return queue_isolation_warnings(connections[router.db_for_write(Job)])


def queue_isolation_warnings(connection: Any) -> list[checks.CheckMessage]:
    """Warn when a MySQL ``connection`` is set to lock more than a claim needs."""
    if connection.vendor != "mysql":
        return []
    # Django's default; None or "" keeps the server's, REPEATABLE READ out of the box.
    level = connection.settings_dict.get("OPTIONS", {}).get("isolation_level", "read committed")
    if str(level or "").lower() in ("read committed", "read uncommitted"):
        return []
    return [
        checks.Warning(
            f"Database {connection.alias!r} runs at isolation level "
            f"{level or 'of the server (REPEATABLE READ by default)'!s}: there a claim also locks "
            "the gaps it reads, so uploads wait for claims and can fail with a deadlock.",
            hint="Keep Django's default, OPTIONS['isolation_level'] = 'read committed', for "
            "the database of the job table.",
            id="attachments.W050",
        )
    ]


def queue_database_errors(connection: Any) -> list[checks.CheckMessage]:
    """What keeps the database queue from claiming on ``connection``'s server."""
    from .claims import VENDORS, claimer_class

    if connection.vendor not in VENDORS:
        return [
            checks.Error(
                f"The database queue cannot run on database {connection.alias!r} "
                f"({connection.vendor}).",
                hint=f"Keep the Job table on {', '.join(VENDORS)} (a database router "
                "can), or use BACKEND='tasks'.",
                id="attachments.E151",
            )
        ]
    problem = claimer_class(connection.vendor).unsupported(connection)
    if problem:
        return [
            checks.Error(
                f"The database queue cannot claim jobs on database {connection.alias!r}: "
                f"{problem}.",
                hint="Upgrade the database server, or use BACKEND='tasks'.",
                id="attachments.E150",
            )
        ]
    return []


def _check_task_backend() -> list[checks.CheckMessage]:
    """BACKEND="tasks": can every field's job be sent, as the backend will judge it?"""
    if not _HAS_TASKS:
        return [
            checks.Error(
                "ATTACHMENTS['BACKEND'] is 'tasks', but Django's Tasks framework is missing.",
                hint="Use Django 6.0 or later, or `pip install django-tasks` on Django 5.2.",
                id="attachments.E160",
            )
        ]
    alias = conf.TASKS_BACKEND
    from . import djangotasks

    try:
        backend = djangotasks.task_backends[alias]
    except Exception as exc:  # an unknown alias, or a backend that cannot be loaded
        return [
            checks.Error(
                f"ATTACHMENTS['TASKS_BACKEND'] is {alias!r}, which cannot be used: {exc}",
                hint="Name an alias of settings.TASKS whose backend is installed.",
                id="attachments.E161",
            )
        ]
    # The tasks are declared (and housekeeping is sent) in ATTACHMENTS["QUEUE"].
    try:
        from . import tasks

        tasks.using(tasks.housekeep, conf.QUEUE, 0)
    except djangotasks.INVALID_TASK as exc:
        return [
            checks.Error(
                f"The task backend {alias!r} refuses the attachment tasks in queue "
                f"ATTACHMENTS['QUEUE'] = {conf.QUEUE!r}: {exc}",
                hint="Declare that queue in the backend's QUEUES, or set ATTACHMENTS['QUEUE'].",
                id="attachments.E162",
            )
        ]
    errors = list(_check_fields_sendable(tasks, backend))
    if not backend.supports_defer:
        errors.append(
            checks.Warning(
                f"The task backend {alias!r} ({type(backend).__name__}) cannot run a task "
                "later, so it gets no retries and no housekeeping: a failed attempt, or a "
                "runner killed mid-job, waits in the job table.",
                hint="Use a backend that supports run_after (RQ, Celery, django-tasks-db), "
                "or also run `manage.py process_attachments`, which takes those jobs.",
                id="attachments.W060",
            )
        )
    return errors


def _check_fields_sendable(tasks: Any, backend: Any) -> Iterator[checks.CheckMessage]:
    from . import djangotasks
    from .fields import AttachmentField

    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, AttachmentField) or not field.process_in_background:
                continue
            try:
                tasks.using(tasks.process_attachment, field.queue_name, 0)
            except djangotasks.INVALID_TASK as exc:
                yield checks.Error(
                    f"The task backend {conf.TASKS_BACKEND!r} refuses this field's queue "
                    f"{field.queue_name!r}: {exc}",
                    hint=f"Add {field.queue_name!r} to the QUEUES of settings.TASKS"
                    f"[{conf.TASKS_BACKEND!r}], or give the field a queue it declares.",
                    obj=field,
                    id="attachments.E163",
                )
                continue
            if field.priority and not backend.supports_priority:
                yield checks.Error(
                    f"The field has priority={field.priority}, but the task backend "
                    f"{conf.TASKS_BACKEND!r} ({type(backend).__name__}) has no priorities.",
                    hint="Remove the priority, or use a backend that supports them.",
                    obj=field,
                    id="attachments.E164",
                )


@checks.register(deploy=True)
def check_storages_reachable(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With ``check --deploy``: can every attachment storage be reached with its credentials?"""
    from .fields import AttachmentField
    from .storage import staging_storage

    places: dict[int, tuple[Any, list[str]]] = {}
    staging = staging_storage()
    places[id(staging)] = (staging, ["the staging storage"])
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, AttachmentField):
                entry = places.setdefault(id(field.storage), (field.storage, []))
                entry[1].append(f"{model._meta.label}.{field.name}")
    errors: list[checks.CheckMessage] = []
    for storage, users in places.values():
        try:
            _touch(storage)
        except Exception as exc:
            errors.append(
                checks.Error(
                    f"The storage of {', '.join(users)} cannot be reached: {exc}",
                    hint="Check the storage's credentials, bucket name, region and endpoint.",
                    obj=storage,
                    id="attachments.E201",
                )
            )
    return errors


def _touch(storage: Any) -> None:
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        # S3: exists() reads a missing bucket as a missing key; ask about the bucket itself.
        bucket.meta.client.head_bucket(Bucket=bucket.name)
    else:
        storage.exists("attachments-deploy-check")


@checks.register(checks.Tags.database)
def check_styles_made(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """With ``check --database`` (and ``migrate``): do published records lack declared styles?

    Counting reads every published record's state, too much for each command's
    start-up, so it runs only where the database is asked about.
    """
    from . import plan, renditions
    from .targets import READY, fields

    if not databases:
        return []
    warnings: list[checks.CheckMessage] = []
    for field in fields():
        using = router.db_for_read(field.model)
        if using not in databases:
            continue
        try:
            current = {
                name: plan.fingerprint(style, renditions.qualities())
                for name, style in field.styles.items()
            }
            counts = _count_due(field.model._base_manager.using(using), field, current, READY)
        except DatabaseError:  # not migrated yet: nothing to count
            continue
        missing = _per_style(counts, "missing")
        if missing:
            warnings.append(
                checks.Warning(
                    f"Published records lack styles: {missing}.",
                    hint="Their URLs fall back to another style or the original until made: "
                    f"python manage.py reprocess_attachments {field.field_id} --missing-only",
                    obj=field,
                    id="attachments.W070",
                )
            )
        older = _per_style(counts, "older")
        if older:
            warnings.append(
                checks.Warning(
                    f"Published records have styles made from an older declaration: {older}.",
                    hint="The older files are served until made again: "
                    f"python manage.py reprocess_attachments {field.field_id}",
                    obj=field,
                    id="attachments.W071",
                )
            )
    return warnings


def _per_style(counts: dict[str, dict[str, int]], kind: str) -> str:
    """``"wide (12), thumb (3)"``: the styles with records of ``kind``, and how many."""
    return ", ".join(f"{name} ({n[kind]})" for name, n in counts.items() if n[kind])


def _count_due(
    records: Any, field: Any, current: dict[str, str], ready: str
) -> dict[str, dict[str, int]]:
    """Per style, how many published records miss it and how many have an older one.

    ``current`` is each style's fingerprint; one query, whatever the number of styles.
    """
    records = records.filter(**{field.state_attname: ready})
    aggregates = {}
    for index, name in enumerate(current):
        entry = KeyTransform(name, field.styles_attname)
        fp, error = f"fp{index}", f"error{index}"
        records = records.annotate(
            **{fp: KeyTextTransform("fp", entry), error: KeyTextTransform("error", entry)}
        )
        other = ~Q(**{fp: current[name]})
        no_file = Q(**{f"{fp}__isnull": True}) | (Q(**{f"{error}__isnull": False}) & other)
        older = Q(**{f"{fp}__isnull": False, f"{error}__isnull": True}) & other
        aggregates[f"missing{index}"] = Count("pk", filter=no_file)
        aggregates[f"older{index}"] = Count("pk", filter=older)
    totals = records.aggregate(**aggregates) if aggregates else {}
    return {
        name: {
            "missing": totals[f"missing{index}"],
            "older": totals[f"older{index}"],
        }
        for index, name in enumerate(current)
    }
