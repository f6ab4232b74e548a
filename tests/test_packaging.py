"""The package's metadata says what CI tests."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import django
import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.mark.skipif(
    not os.environ.get("CI"),
    reason="checks the versions CI runs, so only on CI (CI=true): a developer's may differ",
)
def test_classifiers_name_the_python_and_django_this_run_uses():
    classifiers = tomllib.loads(PYPROJECT.read_text())["project"]["classifiers"]
    python = "Programming Language :: Python :: {}.{}".format(*sys.version_info[:2])
    framework = "Framework :: Django :: {}.{}".format(*django.VERSION[:2])
    assert python in classifiers
    assert framework in classifiers
