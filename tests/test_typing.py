"""A project's code type-checks against the public API: ``item.image`` is an attachment."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None
    or importlib.util.find_spec("mypy_django_plugin") is None,
    reason="mypy and django-stubs are not installed (pip install -e '.[test]')",
)


def test_user_code_sees_attachment_types(tmp_path):
    # In its own process: the django-stubs plugin sets Django up from the project's settings.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--follow-imports=silent",
            str(ROOT / "tests" / "typing" / "user_code.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # assert_type() checks the rest; reveal_type shows the field's own class reached users.
    assert 'Revealed type is "attachments.fields.AttachmentField"' in result.stdout
