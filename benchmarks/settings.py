"""Settings for ``benchmarks/queue.py`` and the worker processes it starts.

The database comes from the environment so that every process (driver and
workers, started with ``spawn``) points at the same one:

* ``ATTACHMENTS_BENCH_DB``: ``sqlite`` (default), ``postgres`` or ``mariadb``.
* ``ATTACHMENTS_BENCH_SQLITE``: path of the SQLite file.
* ``ATTACHMENTS_BENCH_PG_NAME``: name of the PostgreSQL database; the server is
  ``PGHOST``/``PGPORT``/``PGUSER`` (default ``127.0.0.1:5432``, ``postgres``).
* ``ATTACHMENTS_BENCH_MARIADB_NAME``: name of the MariaDB database; the server is
  ``MYSQL_HOST``/``MYSQL_PORT``/``MYSQL_USER``/``MYSQL_PASSWORD`` (default
  ``127.0.0.1:3306``, root, no password).
* ``ATTACHMENTS_BENCH_ALIASES``: JSON ``{"alias": name or path}`` of further
  databases like the default one (the benchmark keeps one backlog in each).
* ``ATTACHMENTS_BENCH_CONN_MAX_AGE``: ``CONN_MAX_AGE`` in seconds, ``none`` for
  persistent connections; unset keeps Django's default (0).
* ``ATTACHMENTS_BENCH_RELAXED_COMMIT=1``: commits that do not wait for the disk
  (PostgreSQL ``synchronous_commit=off``, SQLite ``PRAGMA synchronous=NORMAL``);
  unset keeps each database's default.

Nothing else is configured: the Job table is all a queue benchmark needs.
"""

from __future__ import annotations

import json
import os
import tempfile

from benchmarks.databases import database

SECRET_KEY = "benchmarks"
DEBUG = False  # DEBUG=True would keep every query in memory
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["attachments"]
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "attachments-bench-media")
ATTACHMENTS: dict[str, object] = {}

_max_age = os.environ.get("ATTACHMENTS_BENCH_CONN_MAX_AGE", "")
_common: dict[str, object] = {}
if _max_age:
    _common["CONN_MAX_AGE"] = None if _max_age.lower() == "none" else int(_max_age)

_relaxed = os.environ.get("ATTACHMENTS_BENCH_RELAXED_COMMIT") == "1"

_vendor = os.environ.get("ATTACHMENTS_BENCH_DB", "sqlite")
if _vendor == "postgres":
    _database_name = os.environ.get("ATTACHMENTS_BENCH_PG_NAME", "attachments_bench")
elif _vendor == "mariadb":
    _database_name = os.environ.get("ATTACHMENTS_BENCH_MARIADB_NAME", "attachments_bench")
else:
    _database_name = os.environ.get(
        "ATTACHMENTS_BENCH_SQLITE", os.path.join(tempfile.gettempdir(), "attachments-bench.sqlite3")
    )
DATABASES = {"default": {**database(_vendor, _database_name, relaxed=_relaxed), **_common}}

for _alias, _name in json.loads(os.environ.get("ATTACHMENTS_BENCH_ALIASES", "{}")).items():
    DATABASES[_alias] = {**DATABASES["default"], "NAME": _name}
