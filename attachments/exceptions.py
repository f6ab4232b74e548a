"""The exceptions this app raises, in one small tree.

``InvalidImage`` and its subclasses are permanent: retrying cannot help, so the
queue fails such a job at once. Everything else raised while processing (I/O,
storage, database) is treated as transient and retried with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured


class AttachmentsError(Exception):
    """Base class of every error raised by django-delayed-attachments.

    ``message`` may be a lazy translation with ``%(name)s`` placeholders filled
    from ``params``; ``code`` names it, as Django's ``ValidationError`` codes
    do, so that a form field's ``error_messages`` can replace it.
    """

    code = "error"

    def __init__(
        self, message: Any = "", *, code: str | None = None, params: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.params = dict(params or {})

    def __str__(self) -> str:
        # Formatted when read, so the message comes out in the language active then.
        return str(self.message) % self.params if self.params else str(self.message)


class InvalidImage(AttachmentsError):
    """The file is not an image this app accepts; the message is shown to users."""

    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    """The image exceeds the configured byte or pixel limits."""

    code = "too_many_pixels"


class StagingFailed(AttachmentsError):
    """The upload could not be written to the staging storage (disk full, storage down)."""

    code = "staging_failed"


class ConfigurationError(AttachmentsError, ImproperlyConfigured):
    """The project's settings or a field's declaration are unusable."""


class JobFailed(AttachmentsError):
    """A job failed for good; raised by a task backend's runner so its engine records it too."""
