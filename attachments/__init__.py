"""django-delayed-attachments: image attachments whose styles are made in the background."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

__all__ = ["AttachmentField", "__version__"]

try:
    __version__ = version("django-delayed-attachments")
except PackageNotFoundError:  # pragma: no cover - running from a checkout
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from .fields import AttachmentField


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (e.g. in settings) loads no models.
    if name == "AttachmentField":
        from .fields import AttachmentField

        return AttachmentField
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
