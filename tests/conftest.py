from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    """Give each test its own MEDIA_ROOT, so files never leak between tests."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def child_environ(media: Path) -> dict[str, str]:
    """The environment of a process that works on the test's database and MEDIA_ROOT."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ATTACHMENTS_TEST_CHILD_DB": str(connection.settings_dict["NAME"]),
        "ATTACHMENTS_TEST_MEDIA_ROOT": str(media),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def start_worker(media: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``manage.py process_attachments`` processes on the test database.

    Needs ``django_db(transaction=True)``: a worker only sees committed rows.
    ``settings`` become the worker's ``ATTACHMENTS``, ``storages`` its ``STORAGES``;
    ``command`` runs another management command in the same surroundings.
    """
    started: list[subprocess.Popen[str]] = []
    env = child_environ(media)

    def start(
        *args: str,
        settings: dict[str, object] | None = None,
        storages: dict[str, object] | None = None,
        environ: dict[str, str] | None = None,
        command: str = "process_attachments",
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), command, *args],
            cwd=ROOT,
            env={
                **env,
                "ATTACHMENTS_TEST_SETTINGS": json.dumps(settings or {}),
                "ATTACHMENTS_TEST_STORAGES": json.dumps(storages),
                **(environ or {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.fixture
def staging_alias(settings) -> Callable[[Path], None]:
    """Stage uploads in a ``STORAGES`` alias: a FileSystemStorage at the folder given."""

    def use(location: Path) -> None:
        settings.STORAGES = {
            **settings.STORAGES,
            "staging": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location)},
            },
        }
        settings.ATTACHMENTS = {"STAGING_STORAGE": "staging"}

    return use
