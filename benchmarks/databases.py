"""The one database a benchmark's processes share, as a ``DATABASES`` entry."""

from __future__ import annotations

import os
from typing import Any

RELAXED_SQLITE = "PRAGMA synchronous=NORMAL"


def database(
    vendor: str, name: str, *, relaxed: bool = False, relaxed_sqlite: str = RELAXED_SQLITE
) -> dict[str, Any]:
    """PostgreSQL database or SQLite file ``name``; ``relaxed``: commits do not wait for the disk.

    The PostgreSQL server comes from ``PGHOST``/``PGPORT``/``PGUSER`` (default
    ``127.0.0.1:5432``, ``postgres``); ``relaxed_sqlite`` is what relaxes SQLite.
    """
    if vendor == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "OPTIONS": {"options": "-c synchronous_commit=off"} if relaxed else {},
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        # As in the demo site: writers wait for each other instead of failing.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": relaxed_sqlite if relaxed else "",
        },
    }
