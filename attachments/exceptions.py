"""The exceptions this app raises, in one small tree.

``InvalidImage`` and its subclasses are permanent: retrying cannot help, so the
queue fails such a job at once. Everything else raised while processing (I/O,
storage, database) is treated as transient and retried with backoff.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class AttachmentsError(Exception):
    """Base class of every error raised by django-delayed-attachments."""


class InvalidImage(AttachmentsError):
    """The file is not an image this app accepts; the message is shown to users."""


class ImageTooLarge(InvalidImage):
    """The image exceeds the configured byte or pixel limits."""


class StagingFailed(AttachmentsError):
    """The upload could not be written to the staging storage (disk full, storage down)."""


class ConfigurationError(AttachmentsError, ImproperlyConfigured):
    """The project's settings or a field's declaration are unusable."""
