"""Settings of the test suite: SQLite, or a server with ATTACHMENTS_TEST_DB=postgres or mysql."""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import signal
import tempfile

SECRET_KEY = "tests"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "attachments",
    "demo_site",
    "tests.testapp",
]

# Task engines, for BACKEND="tasks" through real workers (tests/test_engines.py).
INSTALLED_APPS += [app for app in ("django_rq", "django_tasks_db") if importlib.util.find_spec(app)]
# One queue per test run (its worker subprocesses inherit it), so runs that
# share a broker never take each other's tasks.
_TEST_QUEUE = os.environ.setdefault("ATTACHMENTS_TEST_QUEUE", f"attachments-test-{os.getpid()}")
RQ_QUEUES = {
    name: {"URL": os.environ.get("ATTACHMENTS_TEST_REDIS", "redis://127.0.0.1:6379/0")}
    for name in {"default", _TEST_QUEUE}
}
CELERY_BROKER_URL = os.environ.get("ATTACHMENTS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
if os.environ.get("ATTACHMENTS_TEST_TASKS"):
    TASKS = json.loads(os.environ["ATTACHMENTS_TEST_TASKS"])

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Worker subprocesses started by the tests are pointed at the test database
# and the test's MEDIA_ROOT through these variables.
_CHILD_DB = os.environ.get("ATTACHMENTS_TEST_CHILD_DB")
if _CHILD_DB:
    # A worker started by the suite prints every thread's stack on SIGUSR1, so a
    # test whose worker does not exit shows where it is stuck.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

_SERVERS = {
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    },
    # MySQL 8 or MariaDB 10.6+, through mysqlclient.
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "USER": os.environ.get("MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSQL_PORT", "3306"),
    },
}
_SERVER = _SERVERS.get(os.environ.get("ATTACHMENTS_TEST_DB", ""))
if _SERVER:
    DATABASES = {
        "default": {
            **_SERVER,
            "NAME": _CHILD_DB or "attachments",
            # One test database per run, so runs side by side never drop each other's.
            "TEST": {"NAME": f"test_attachments_{os.getpid()}"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _CHILD_DB or os.path.join(tempfile.gettempdir(), "attachments-tests.sqlite3"),
            # A file, not memory, so worker subprocesses can share it.
            "TEST": {
                "NAME": os.path.join(
                    tempfile.gettempdir(), f"attachments-test-{os.getpid()}.sqlite3"
                )
            },
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

STORAGES = json.loads(os.environ.get("ATTACHMENTS_TEST_STORAGES", "null")) or {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Never read real AWS credentials or configuration.
os.environ["AWS_CONFIG_FILE"] = os.path.join(tempfile.gettempdir(), "attachments-no-aws-config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.environ["AWS_CONFIG_FILE"]
# Each test gets its own MEDIA_ROOT from the `media` fixture.
MEDIA_ROOT = os.environ.get("ATTACHMENTS_TEST_MEDIA_ROOT") or tempfile.mkdtemp(
    prefix="attachments-media-"
)
MEDIA_URL = "/media/"
STATIC_URL = "/static/"

# Worker subprocesses get the test's ATTACHMENTS settings as JSON.
ATTACHMENTS: dict[str, object] = json.loads(os.environ.get("ATTACHMENTS_TEST_SETTINGS", "{}"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
