"""A responsive style's ``<picture>``: its sources and its fallback ``<img>``.

What the record's state says was made (``plan.Made.variants``) gives every
file, so the markup is a function of that state and the storage's URLs, with
no I/O: the template tag renders it, the status endpoint hands it to
``attachments.js`` for a placeholder to swap itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import plan, storage
from .styles import MEDIA_TYPES

if TYPE_CHECKING:
    from .files import AttachmentFieldFile


@dataclass(frozen=True)
class Picture:
    """The srcsets of one responsive style as made for a record's original."""

    # (media type, srcset) of every format but the last, best first: the <source>s.
    sources: tuple[tuple[str, str], ...]
    srcset: str  # the last format's, for the fallback <img>

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [{"type": kind, "srcset": srcset} for kind, srcset in self.sources],
            "srcset": self.srcset,
        }


def picture(file: AttachmentFieldFile, style: str) -> Picture | None:
    """Return ``style``'s srcsets for ``file``; None while it has no files of a responsive style.

    Files made from an older declaration are served until the style is made
    again, as a style's ``url`` is.
    """
    entry = plan.made(file.made).get(style)
    if not file.name or entry is None or not entry.ok or not entry.variants:
        return None
    names = storage.made_names(file.name, style, entry)  # in the variants' order
    urls = {
        variant[:2]: file.storage.url(name)
        for variant, name in zip(entry.variants, names, strict=True)
    }
    srcsets = [
        (MEDIA_TYPES[fmt], ", ".join(f"{urls[fmt, width]} {width}w" for width, _ in sizes))
        for fmt, sizes in entry.sources().items()
    ]
    return Picture(tuple(srcsets[:-1]), srcsets[-1][1])
