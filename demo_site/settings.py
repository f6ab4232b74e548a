"""Settings of the demo: SQLite, local files, one worker beside the web server."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "attachments",
    "demo_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", BASE_DIR / "demo_site" / "db.sqlite3"),
        # Web server and worker write to the same file: wait for each other's
        # short transactions instead of failing with "database is locked".
        # WAL lets the web server read while the worker writes; synchronous=NORMAL
        # syncs the log at checkpoints rather than at every commit, which at worst
        # re-runs a just-finished job after a power cut.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

# Uploads wait in media-staging/, beside MEDIA_ROOT (which urls.py serves, so
# staging must not lie in it); published images go to S3: a
# real bucket when AWS_STORAGE_BUCKET_NAME is set (credentials and region from
# the usual AWS_* variables), else the local endpoint the Procfile starts.
if os.environ.get("AWS_STORAGE_BUCKET_NAME"):
    _S3_OPTIONS: dict[str, object] = {"bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"]}
else:
    from demo_site import s3 as _local_s3

    _S3_OPTIONS = {
        "bucket_name": _local_s3.BUCKET,
        "endpoint_url": _local_s3.ENDPOINT,
        "region_name": _local_s3.REGION,
        "access_key": _local_s3.CREDENTIALS["aws_access_key_id"],
        "secret_key": _local_s3.CREDENTIALS["aws_secret_access_key"],
    }

STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **_S3_OPTIONS,
            # Names are unique per upload, so objects never change: cache them for good.
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            # Private bucket: URLs are signed and expire.
            "querystring_auth": True,
            "querystring_expire": 3600,
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"
STATIC_URL = "/static/"

ATTACHMENTS: dict[str, object] = {}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"attachments": {"handlers": ["console"], "level": "INFO"}},
}
