"""The rendition plan: what a field's styles make of one original, and what is made already.

``outputs`` turns styles and the original's size and format into one ``Output``
per style: its size (with the resize and crop that give it), format, quality and
encoder options, and the style's fingerprint. ``imaging`` executes outputs;
``storage`` names them.

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
    "stand_in",
    "to_focus",
]

# The key of the original's own entry (its size) in a record's state; never a
# style name (styles.py reserves it).
ORIGINAL = "original"
# The key of the record's focal point, [x, y]; never a style name either.
FOCUS = "focus"
# Keys of a record's state that are not styles.
_NOT_STYLES = frozenset({ORIGINAL, FOCUS})
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
    formats = [style.format] if style.format else KEPT_FORMATS
    declaration: dict[str, Any] = {
        "geometry": str(style.geometry),
        "format": style.format or "",
        "quality": style.quality or {fmt: qualities[fmt] for fmt in formats if fmt in qualities},
        "options": [list(option) for option in style.options],
    }
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

    @property
    def size(self) -> tuple[int, int]:
        return self.geometry.size

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
        fmt = style.output_format(source_format)
        point = focus if follows_focus(style) else None
        planned[style.name] = Output(
            style=style.name,
            fingerprint=fingerprint(style, qualities, focus),
            geometry=style.geometry.plan(*size, focus=point),
            format=fmt,
            quality=style.quality or qualities.get(fmt),
            options=style.options,
            processors=style.processors,
            animated=style.animated and fmt in ANIMATED_FORMATS,
        )
    return planned


@dataclass(frozen=True)
class Made:
    """What a record says was made of one style for its current original."""

    fingerprint: str
    format: str = ""  # empty when making it failed
    width: int = 0
    height: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        """A file exists for it (it may be from an older declaration)."""
        return not self.error

    @classmethod
    def of(cls, output: Output, size: tuple[int, int]) -> Made:
        return cls(output.fingerprint, output.format, *size)

    def to_json(self) -> dict[str, Any]:
        if self.error:
            return {"fp": self.fingerprint, "error": self.error}
        return {"fp": self.fingerprint, "format": self.format, "size": [self.width, self.height]}

    @classmethod
    def from_json(cls, value: Any) -> Made | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("fp"), str):
            return None
        if value.get("error"):
            return cls(value["fp"], error=str(value["error"]))
        size = value.get("size") or [0, 0]
        return cls(value["fp"], str(value.get("format", "")), int(size[0]), int(size[1]))


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
    return style.geometry.plan(*size).size if size else None


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
