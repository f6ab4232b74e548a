"""A storage whose faults a test steers from outside the worker process that uses it.

Engine workers (RQ, Celery, django-tasks-db) are real processes: a test cannot
monkeypatch them, so it leaves files in ``ATTACHMENTS_TEST_FAULTS``:
``fail`` holds how many saves are still to fail (an S3 outage), and ``block``
makes the next save write its process id to ``blocked`` and wait until that
process is killed (a worker SIGKILLed mid-job, at a moment the test knows).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage


class FaultyStorage(FileSystemStorage):
    def _save(self, name: str, content: Any) -> str:
        control = Path(os.environ["ATTACHMENTS_TEST_FAULTS"])
        if (control / "block").exists():
            (control / "blocked").write_text(str(os.getpid()))
            while True:  # until SIGKILL
                time.sleep(0.05)
        failures = control / "fail"
        left = int(failures.read_text()) if failures.exists() else 0
        if left > 0:
            failures.write_text(str(left - 1))
            raise ConnectionError(f"Storage down ({left} more failure(s) to go)")
        return super()._save(name, content)
