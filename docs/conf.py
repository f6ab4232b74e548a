"""Sphinx configuration of the documentation site (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]
# autodoc and the generated reference import the package: give Django the test settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from attachments import __version__  # noqa: E402

project = "django-delayed-attachments"
author = "django-delayed-attachments developers"
copyright = "django-delayed-attachments developers"
release = __version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "attachments_reference",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "tutorial/mysite"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# architecture.md is written for GitHub, whose diagrams are plain text fences.
highlight_language = "none"
# Messages and settings are quoted as the code writes them: keep straight quotes.
smartquotes = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "undoc-members": False}
# Types named in signatures that Sphinx cannot link without more inventories.
nitpicky = False

html_theme = "furo"
html_title = f"django-delayed-attachments {release}"
