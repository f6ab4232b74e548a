"""Settings of the upload and worker benchmarks, from the environment.

Every process (benchmark driver, web server, worker) is started with the same
variables, so they share one database and one MEDIA_ROOT:

* ``UPLOADAPP_DB``: ``sqlite`` (default) or ``postgres``;
* ``UPLOADAPP_DB_NAME``: the SQLite file, or the PostgreSQL database (server from
  ``PGHOST``/``PGPORT``/``PGUSER``, default ``127.0.0.1:5432``, ``postgres``);
* ``UPLOADAPP_MEDIA_ROOT``: where uploads and styles are written;
* ``UPLOADAPP_ATOMIC_REQUESTS=1``: one transaction per request;
* ``UPLOADAPP_RELAXED_COMMIT=1``: commits that do not wait for the disk (SQLite in
  WAL mode with ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``).
"""

from __future__ import annotations

import os
import tempfile

from benchmarks.databases import database

SECRET_KEY = "benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["attachments", "benchmarks.uploadapp"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.uploadapp.urls"
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
MEDIA_ROOT = os.environ.get(
    "UPLOADAPP_MEDIA_ROOT", os.path.join(tempfile.gettempdir(), "uploadapp-media")
)
# Django keeps uploads up to 2.5 MB in memory, larger ones in a temporary file: as deployed.
ATTACHMENTS: dict[str, object] = {}
if os.environ.get("UPLOADAPP_MEMORY_BUDGET"):
    ATTACHMENTS["MEMORY_BUDGET"] = int(os.environ["UPLOADAPP_MEMORY_BUDGET"])
LOGGING_CONFIG = None
_RELAXED = os.environ.get("UPLOADAPP_RELAXED_COMMIT") == "1"

_VENDOR = os.environ.get("UPLOADAPP_DB", "sqlite")
_NAME = os.environ.get(
    "UPLOADAPP_DB_NAME",
    "uploadapp"
    if _VENDOR == "postgres"
    else os.path.join(tempfile.gettempdir(), "uploadapp.sqlite3"),
)
DATABASES = {
    "default": database(
        _VENDOR,
        _NAME,
        relaxed=_RELAXED,
        relaxed_sqlite="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
}

DATABASES["default"]["ATOMIC_REQUESTS"] = os.environ.get("UPLOADAPP_ATOMIC_REQUESTS") == "1"
