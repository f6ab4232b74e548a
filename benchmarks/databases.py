"""The one database a benchmark's processes share, as a ``DATABASES`` entry."""

from __future__ import annotations

import os
from typing import Any

RELAXED_SQLITE = "PRAGMA synchronous=NORMAL"


def mariadb_params() -> dict[str, Any]:
    """The MariaDB (or MySQL) server: ``MYSQL_HOST``/``MYSQL_PORT``/``MYSQL_USER``/
    ``MYSQL_PASSWORD``, by default root with no password on ``127.0.0.1:3306``."""
    return {
        "host": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MYSQL_PORT", "3306")),
        "user": os.environ.get("MYSQL_USER", "root"),
        "password": os.environ.get("MYSQL_PASSWORD", ""),
    }


def postgres_admin(statement: str) -> None:
    """Run ``statement`` (CREATE or DROP DATABASE) on the PostgreSQL server, in autocommit."""
    import psycopg

    params = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": "postgres",
    }
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(statement)


def database(
    vendor: str, name: str, *, relaxed: bool = False, relaxed_sqlite: str = RELAXED_SQLITE
) -> dict[str, Any]:
    """PostgreSQL or MariaDB database or SQLite file ``name``; ``relaxed``: commits do not
    wait for the disk (not on MariaDB, where that is a server-wide setting).

    The PostgreSQL server comes from ``PGHOST``/``PGPORT``/``PGUSER`` (default
    ``127.0.0.1:5432``, ``postgres``), MariaDB's from ``mariadb_params``;
    ``relaxed_sqlite`` is what relaxes SQLite.
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
    if vendor == "mariadb":
        params = mariadb_params()
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": params["user"],
            "PASSWORD": params["password"],
            "HOST": params["host"],
            "PORT": str(params["port"]),
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
