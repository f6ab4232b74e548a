"""The rendition plan: what a field's styles make of one original, and what is made already.

``outputs`` turns styles and the original's size and format into one ``Output``
per style: its size (with the resize and crop that give it), format, quality and
encoder options, and the style's fingerprint. A responsive style gives one
output per width and format (``variants``: never wider than the original).
``imaging`` executes outputs; ``storage`` names them.

A record keeps, per style, what was made for its current original (``Made``,
stored as JSON in the field's ``<name>_styles`` column): the fingerprint of the
declaration it was made from, its format and size, or the error that stopped
it. So whether a style is made from its current declaration is a comparison
(``due``), and which file stands in for a style not made yet is a function of
the plan and that state (``stand_in``), neither touching storage.

The record may also keep a focal point (``focus``: x, y as fractions of the
upright original). Crop styles without a gravity of their own follow it
(``follows_focus``), and their fingerprint includes it, so moving it makes
exactly those styles due.

Pure: no Django, no Pillow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .geometry import Plan, Point
from .styles import ANIMATED_FORMATS, EXTENSIONS, KEPT_FORMATS, Processor, Style

__all__ = [
    "FOCUS",
    "ORIGINAL",
    "PREVIEW",
    "Made",
    "Output",
    "due",
    "fingerprint",
    "focus",
    "follows_focus",
    "made",
    "original_size",
    "outputs",
    "planned_size",
    "preview",
    "stand_in",
    "to_focus",
    "variants",
]

# The key of the original's own entry (its size) in a record's state; never a
# style name (styles.py reserves it).
ORIGINAL = "original"
# The key of the record's preview (a tiny image as a data: URI, see ``previews``):
# not an identifier, so never a style's name ("preview" is a common one).
PREVIEW = "@preview"
# The key of the record's focal point, [x, y]; not an identifier either.
FOCUS = "@focus"
# Keys of a record's state that are not styles.
_NOT_STYLES = frozenset({ORIGINAL, PREVIEW, FOCUS})
# Digits a focal point keeps: a ten-thousandth of the image is below a pixel
# for any image we accept, and the fingerprint of a point set twice stays put.
FOCUS_DIGITS = 4


def follows_focus(style: Style) -> bool:
    """Whether ``style`` crops where the record's focal point is.

    Only ``#`` crops that name no gravity: a gravity written in the style is
    the developer's choice for every image (a banner cut from the top), the
    default centre is only the absence of one.
    """
    geometry = style.geometry
    return (
        geometry.flag == "#"
        and geometry.gravity is None
        and geometry.width is not None
        and geometry.height is not None
    )


def fingerprint(style: Style, qualities: Mapping[str, int], focus: Point | None = None) -> str:
    """Return a short hash of everything that decides ``style``'s pixels and encoding.

    The configured default qualities count only for a style without its own
    quality, and only for the formats it may write; the record's ``focus``
    only for a style that follows it.
    """
    declared = style.formats or ((style.format,) if style.format else ())
    formats = declared or KEPT_FORMATS
    declaration: dict[str, Any] = {
        "geometry": str(style.geometry),
        "format": style.format or "",
        "quality": style.quality or {fmt: qualities[fmt] for fmt in formats if fmt in qualities},
        "options": [list(option) for option in style.options],
    }
    if style.responsive:
        declaration.update(
            geometry="", widths=list(style.widths), format=list(style.formats), crop=style.crop
        )
        declaration["gravity"] = style.gravity
    # Only when declared, so the fingerprints of styles without stay as they were.
    if style.processors:
        declaration["processors"] = [processor.name for processor in style.processors]
    if style.animated:
        declaration["animated"] = True
    if focus is not None and follows_focus(style):
        declaration["focus"] = [round(v, FOCUS_DIGITS) for v in focus]
    text = json.dumps(declaration, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Output:
    """One style's file for one original."""

    style: str
    fingerprint: str
    geometry: Plan  # the resize and crop, on the original as displayed (upright)
    format: str  # Pillow's name
    quality: int | None
    options: tuple[tuple[str, Any], ...]
    processors: tuple[Processor, ...] = ()
    animated: bool = False  # every frame, if the original has several
    width: int | None = None  # a responsive style's: the width this file is for

    @property
    def size(self) -> tuple[int, int]:
        return self.geometry.size

    @property
    def key(self) -> str:
        """What tells it from the style's other outputs: ``"hero-320w.avif"``, else the style."""
        if self.width is None:
            return self.style
        return f"{self.style}-{self.width}w{self.extension}"

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def outputs(
    styles: Iterable[Style],
    size: tuple[int, int],
    source_format: str,
    qualities: Mapping[str, int],
    focus: Point | None = None,
) -> dict[str, Output]:
    """Plan every style in ``styles`` for an original of ``size`` (upright) in ``source_format``.

    ``focus`` is the record's focal point, kept in frame by the styles that follow it.
    """
    planned = {}
    for style in styles:
        if style.responsive:
            # Width by width, each in every format: one resize serves a width's formats.
            formats = style.formats or (style.output_format(source_format),)
            for width, geometry in variants(style, size, focus):
                for fmt in formats:
                    output = _output(style, qualities, geometry, fmt, width, focus)
                    planned[output.key] = output
            continue
        fmt = style.output_format(source_format)
        point = focus if follows_focus(style) else None
        planned[style.name] = _output(
            style, qualities, style.geometry.plan(*size, focus=point), fmt, focus=focus
        )
    return planned


def _output(
    style: Style,
    qualities: Mapping[str, int],
    geometry: Plan,
    fmt: str,
    width: int | None = None,
    focus: Point | None = None,
) -> Output:
    return Output(
        style=style.name,
        fingerprint=fingerprint(style, qualities, focus),
        geometry=geometry,
        format=fmt,
        quality=style.quality or qualities.get(fmt),
        options=style.options,
        processors=style.processors,
        animated=style.animated and fmt in ANIMATED_FORMATS,
        width=width,
    )


def variants(
    style: Style, size: tuple[int, int], focus: Point | None = None
) -> list[tuple[int, Plan]]:
    """A responsive style's widths for an original of ``size`` (upright), each with its plan.

    A cropped style without a gravity keeps the record's ``focus`` in frame.

    Never wider than the original, nor, cropped, than the widest crop it holds:
    the widths past that make one file at that width, the sharpest there is.
    """
    width, height = size
    limit = width
    if style.crop is not None:
        limit = min(width, max(1, height * style.crop[0] // style.crop[1]))
    widths = sorted({min(w, limit) for w in style.widths})
    point = focus if follows_focus(style) else None
    return [(w, style.width_geometry(w).plan(*size, focus=point)) for w in widths]


# One file of a responsive style: (format, width, height).
Variant = tuple[str, int, int]


@dataclass(frozen=True)
class Made:
    """What a record says was made of one style for its current original.

    A responsive style's files are its ``variants``, in the plan's order
    (widths ascending, each in the declared formats); ``format`` and the size
    are then its fallback's: the widest file in its last format.
    """

    fingerprint: str
    format: str = ""  # empty when making it failed
    width: int = 0
    height: int = 0
    error: str = ""
    variants: tuple[Variant, ...] = ()

    @property
    def ok(self) -> bool:
        """A file exists for it (it may be from an older declaration)."""
        return not self.error

    @classmethod
    def of(cls, output: Output, size: tuple[int, int]) -> Made:
        return cls(output.fingerprint, output.format, *size)

    @classmethod
    def of_variants(cls, fingerprint: str, made: Iterable[Variant]) -> Made:
        """A responsive style's entry for its files ``made``, in the plan's order."""
        made = tuple(made)
        fmt, width, height = made[-1]
        return cls(fingerprint, fmt, width, height, variants=made)

    def sources(self) -> dict[str, list[tuple[int, int]]]:
        """A responsive style's sizes by format, formats in their declared order."""
        found: dict[str, list[tuple[int, int]]] = {}
        for fmt, width, height in self.variants:
            found.setdefault(fmt, []).append((width, height))
        return found

    def to_json(self) -> dict[str, Any]:
        if self.error:
            return {"fp": self.fingerprint, "error": self.error}
        value: dict[str, Any] = {
            "fp": self.fingerprint,
            "format": self.format,
            "size": [self.width, self.height],
        }
        if self.variants:
            value["variants"] = [list(variant) for variant in self.variants]
        return value

    @classmethod
    def from_json(cls, value: Any) -> Made | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("fp"), str):
            return None
        if value.get("error"):
            return cls(value["fp"], error=str(value["error"]))
        size = value.get("size") or [0, 0]
        found = tuple((str(f), int(w), int(h)) for f, w, h in value.get("variants") or ())
        return cls(value["fp"], str(value.get("format", "")), int(size[0]), int(size[1]), "", found)


def made(state: Any) -> dict[str, Made]:
    """Read a record's ``<name>_styles`` value into ``Made`` entries by style name."""
    if not isinstance(state, Mapping):
        return {}
    entries = (
        (name, Made.from_json(value)) for name, value in state.items() if name not in _NOT_STYLES
    )
    return {name: entry for name, entry in entries if entry is not None}


def original_size(state: Any) -> tuple[int, int] | None:
    """The original's upright size as the record's state gives it, None if unknown."""
    size = state.get(ORIGINAL) if isinstance(state, Mapping) else None
    if isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return int(size[0]), int(size[1])
    return None


def preview(state: Any) -> str | None:
    """The record's preview (a ``data:`` URI), None if it has none yet."""
    value = state.get(PREVIEW) if isinstance(state, Mapping) else None
    return value if isinstance(value, str) and value.startswith("data:image/") else None


def focus(state: Any) -> Point | None:
    """The record's focal point as its state gives it, None if it has none."""
    point = state.get(FOCUS) if isinstance(state, Mapping) else None
    if (
        isinstance(point, list | tuple)
        and len(point) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        and all(0 <= v <= 1 for v in point)
    ):
        return float(point[0]), float(point[1])
    return None


def to_focus(value: Any) -> Point | None:
    """Return ``value`` (``(x, y)``, fractions from 0 to 1; or None) as a stored focal point.

    Raises ``ValueError`` for anything else.
    """
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"a focal point is (x, y) or None, not {value!r}") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):  # also refuses NaN
        raise ValueError(f"a focal point's x and y are fractions from 0 to 1, not {value!r}")
    return round(x, FOCUS_DIGITS), round(y, FOCUS_DIGITS)


def due(
    styles: Iterable[Style],
    state: Any,
    qualities: Mapping[str, int],
    *,
    missing_only: bool = False,
) -> list[str]:
    """Return the names of ``styles`` not made from their current declaration.

    A style that failed from its current declaration is not due: it would fail
    again. ``missing_only`` leaves out styles that have a file from an older
    declaration (it is served until the style is made again).
    """
    entries = made(state)
    point = focus(state)
    names = []
    for style in styles:
        entry = entries.get(style.name)
        stale = entry is None or entry.fingerprint != fingerprint(style, qualities, point)
        if stale and not (missing_only and entry is not None and entry.ok):
            names.append(style.name)
    return names


def planned_size(style: Style, state: Any) -> tuple[int, int] | None:
    """The size ``style`` has (once made) for the record's original; None if unknown."""
    entry = made(state).get(style.name)
    if entry is not None and entry.ok:
        return entry.width, entry.height
    if style.fixed_size:
        return style.fixed_size
    size = original_size(state)
    if size is None:
        return None
    if style.responsive:
        return variants(style, size)[-1][1].size  # its fallback, the widest
    return style.geometry.plan(*size).size


def stand_in(style: Style, declared: Iterable[str], state: Any) -> str | None:
    """Return the made style that best stands in for ``style``, which has no file yet.

    The smallest of the ``declared`` styles made at least as large as ``style``
    will be, on both sides; None (use the original) when none covers it or its
    size is unknown.
    """
    declared = set(declared)
    wanted = planned_size(style, state)
    if wanted is None:
        return None
    covering = [
        (entry.width * entry.height, name)
        for name, entry in made(state).items()
        if name in declared and entry.ok and entry.width >= wanted[0] and entry.height >= wanted[1]
    ]
    return min(covering)[1] if covering else None
