"""Make some styles of one version and write them to the field's storage.

The worker does it for the styles a job finds due, a request for the field's
``only_process`` styles. What was made comes back as the entries the record's
``<name>_styles`` column takes; the caller decides when the record may show them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from . import imaging, memory, plan, storage
from .conf import conf
from .geometry import Point
from .styles import Style

if TYPE_CHECKING:
    from .fields import AttachmentField

logger = logging.getLogger("attachments")


def qualities() -> dict[str, int]:
    """The configured default qualities, by Pillow format: part of every style's fingerprint."""
    return {"JPEG": conf.JPEG_QUALITY, "WEBP": conf.WEBP_QUALITY, "AVIF": conf.AVIF_QUALITY}


@dataclass
class Made:
    """What ``make`` wrote and what the record is to say about it."""

    original: str  # the version's name
    size: tuple[int, int]  # the original's, upright
    written: list[str] = field(default_factory=list)  # names in the field's storage
    entries: dict[str, Any] = field(default_factory=dict)  # style name -> plan.Made JSON

    def merge(self, current: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
        """Merge into the record's ``current`` state; return it and the files it no longer names.

        Those are files of the same styles made from older declarations: the
        caller deletes them once the record points at the new ones.
        """
        merged = dict(current or {})
        before = plan.made(merged)
        merged[plan.ORIGINAL] = list(self.size)
        merged.update(self.entries)
        after = plan.made(merged)
        replaced = []
        for style in self.entries:
            kept = set(self.files(style, after[style]))
            replaced += [old for old in self.files(style, before.get(style)) if old not in kept]
        return merged, replaced

    def files(self, style: str, entry: plan.Made | None) -> list[str]:
        """The names of ``style``'s files as ``entry`` describes them."""
        return storage.made_names(self.original, style, entry)


def make(
    field: AttachmentField,
    original: str,
    content: IO[bytes],
    styles: Sequence[Style],
    *,
    decoded: Callable[[imaging.Shrink], None] | None = None,
    focus: Point | None = None,
) -> Made:
    """Render ``styles`` of the version ``original`` from ``content`` and store them.

    ``focus`` is the record's focal point (``plan.focus``), which crop styles
    keep in frame. A style the encoder refuses gets an entry with its error;
    the others are written. Raises what ``imaging.render`` raises. ``decoded``
    is called once the original is decoded, before any style is made (see
    ``imaging.render``).
    """
    defaults = qualities()
    rendered = imaging.render(
        content,
        styles,
        max_pixels=conf.MAX_PIXELS,
        jpeg_quality=defaults["JPEG"],
        webp_quality=defaults["WEBP"],
        avif_quality=defaults["AVIF"],
        max_frames=conf.MAX_FRAMES,
        budget=memory.shared(conf.MEMORY_BUDGET),
        decoded=decoded,
        focus=focus,
    )
    made = Made(original, rendered.size)
    for style in styles:
        if style.name in rendered.errors:
            logger.warning("%s of %s: %s", field.field_id, original, rendered.errors[style.name])
            entry = plan.Made(
                plan.fingerprint(style, defaults, focus), error=rendered.errors[style.name]
            )
            made.entries[style.name] = entry.to_json()
            continue
        files = [r for r in rendered.values() if r.style == style.name]
        if style.responsive:
            variants = ((r.format, r.width, r.height) for r in files)
            entry = plan.Made.of_variants(files[0].fingerprint, variants)
        else:
            entry = plan.Made(
                files[0].fingerprint, files[0].format, files[0].width, files[0].height
            )
        for r, name in zip(files, made.files(style.name, entry), strict=True):
            storage.put(field.storage, name, r.data)
            made.written.append(name)
        made.entries[style.name] = entry.to_json()
    return made
