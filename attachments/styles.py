"""A field's styles: what each derived image is called, its geometry and encoding.

A style may be declared as ``"100x100>"``, as ``("100x100>", "png")`` or as
``{"geometry": "100x100>", "format": "webp", "quality": 80, "options": {...},
"processors": [...]}`` (``options`` are passed to Pillow's encoder, e.g.
``{"lossless": True}``; ``processors`` are callables or their dotted paths, run
on each resized image before it is encoded); ``parse_styles`` turns any of these
into frozen ``Style`` objects once, when the field is made.

A *responsive* style declares ``widths`` instead of a geometry, and maybe
``formats`` and an aspect ``crop``: ``{"widths": [320, 640, 1280], "formats":
["avif", "webp", "jpeg"], "crop": "16:9"}`` is one file per width and format,
for ``<picture>`` (see ``plan.variants``).

Pure: a processor's dotted path is imported only when it is first needed
(``Processor.resolve``), so a typo is a system check error, not a crash at import.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .geometry import Geometry, GeometryError, parse_geometry

__all__ = [
    "ANIMATED_FORMATS",
    "EXTENSIONS",
    "FORMATS",
    "KEPT_FORMATS",
    "MEDIA_TYPES",
    "Processor",
    "Style",
    "StyleError",
    "format_for_extension",
    "parse_styles",
    "smallest",
]

# Output formats a style may ask for, by the name users write, mapped to Pillow's.
FORMATS: dict[str, str] = {
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "avif": "AVIF",  # where the installed Pillow encodes it (attachments.E181 says if not)
}

# The extension each output format is stored under.
EXTENSIONS: dict[str, str] = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "AVIF": ".avif",
}
# The media type of each output format, for <source type=...>.
MEDIA_TYPES: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
}
# What a style without a format writes: the original's format if it is one of these,
# which every browser shows, else PNG.
KEPT_FORMATS = ("GIF", "JPEG", "PNG", "WEBP")

# Style names become parts of file names and template attributes
# (``{{ item.image.styles.thumb.url }}``), so they must be identifiers.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,49}$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_RESERVED = frozenset({"original"})  # a key of a record's state (plan.py)
_KEYS = frozenset({"geometry", "format", "quality", "options", "processors", "animated"})
# A responsive style's keys: widths (and formats, crop) in place of geometry and format.
_RESPONSIVE_KEYS = frozenset({"widths", "formats", "crop", "quality", "options", "processors"})
# "16:9", maybe with a "#" crop's gravity as a geometry takes it ("16:9#north").
_ASPECT = re.compile(r"(?P<w>[1-9]\d{0,3}):(?P<h>[1-9]\d{0,3})(?P<gravity>#.+)?")
# The formats that keep an animation; an animated style writes one of them.
ANIMATED_FORMATS = frozenset({"GIF", "WEBP"})
# Encoder options whose values are plain data, so a style stays hashable and its
# fingerprint stable; anything else (a callable, a table) is refused.
_OPTION_TYPES = (str, int, float, bool)


class StyleError(ValueError):
    """A style declaration cannot be used; the message names the style."""


@dataclass(frozen=True)
class Processor:
    """A callable run on a style's resized image: ``function(image) -> image``.

    ``name`` is its dotted path (as declared, or the module and qualified name
    of the callable given); it is what the style's fingerprint counts, so
    changing a style's processors makes it due again. A callable object whose
    class defines ``__repr__`` (a dataclass, say) is named with its repr too,
    so its parameters count. Changing a processor's code does not change the
    name: reprocess with ``--all`` after that.
    """

    name: str
    # The callable given, or None until the dotted path is imported.
    function: Callable[[Any], Any] | None = field(default=None, compare=False)

    def resolve(self) -> Callable[[Any], Any]:
        """Return the callable, importing its dotted path; raise ``StyleError`` if it cannot."""
        if self.function is not None:
            return self.function
        module, _, attribute = self.name.rpartition(".")
        try:
            function = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise StyleError(f"Processor {self.name!r} cannot be imported: {exc}") from None
        if not callable(function):
            raise StyleError(f"Processor {self.name!r} is not callable.")
        return function  # type: ignore[no-any-return]

    @classmethod
    def of(cls, value: str | Callable[[Any], Any]) -> Processor:
        if isinstance(value, str):
            return cls(value)
        kind = value if hasattr(value, "__qualname__") else type(value)
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind is not value and any("__repr__" in vars(k) for k in type(value).__mro__[:-1]):
            # Its parameters (object's own repr would be an address, new every run).
            text = repr(value)
            name = (
                f"{kind.__module__}.{text}"
                if text.startswith(kind.__qualname__)
                else f"{name} {text}"
            )
        return cls(name, value)


@dataclass(frozen=True)
class Style:
    """One derived image of an attachment."""

    name: str
    geometry: Geometry
    format: str | None = None  # Pillow format name; None keeps the original's format.
    quality: int | None = None  # None means the configured default for the format.
    # Extra keyword arguments of Pillow's encoder, sorted by name.
    options: tuple[tuple[str, str | int | float | bool], ...] = ()
    processors: tuple[Processor, ...] = ()  # in the order they run
    # Keep every frame of an animated GIF or WebP; otherwise the first frame is made.
    animated: bool = False
    # A responsive style: its widths (ascending) and formats (best first; empty keeps
    # the original's), and the aspect ratio it is cropped to with its gravity (as a
    # "#" geometry's, "" for the centre). ``geometry`` is then its widest width's
    # (narrower in the files of a narrower original: see plan.variants).
    widths: tuple[int, ...] = ()
    formats: tuple[str, ...] = ()
    crop: tuple[int, int] | None = None
    gravity: str = ""

    @property
    def responsive(self) -> bool:
        """One file per width and format, for ``<picture>``."""
        return bool(self.widths)

    def width_geometry(self, width: int) -> Geometry:
        """A responsive style's geometry for one of its widths."""
        if self.crop is None:
            return parse_geometry(f"{width}x")
        height = max(1, round(width * self.crop[1] / self.crop[0]))
        return parse_geometry(f"{width}x{height}#{self.gravity}")

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """The output size when it does not depend on the source (``#`` and ``!``), else None."""
        g = self.geometry
        # A responsive style's widest file is narrower when the original is.
        if self.responsive:
            return None
        if g.flag in ("#", "!") and g.width is not None and g.height is not None:
            return int(g.width), int(g.height)
        return None

    def output_format(self, source_format: str) -> str:
        """Return the Pillow format this style writes for an original in ``source_format``."""
        if self.format:
            return self.format
        # Formats browsers may not show (TIFF, BMP...) become PNG, which loses nothing.
        return source_format if source_format in KEPT_FORMATS else "PNG"


def smallest(styles: Mapping[str, Style]) -> Style | None:
    """Return the style with the smallest box, the natural preview; None without styles."""

    def area(style: Style) -> float:
        geometry = style.geometry
        if geometry.flag in ("%", "@", "@>"):
            return float("inf")  # size depends on the source; prefer a fixed box
        sides = [side for side in (geometry.width, geometry.height) if side is not None]
        return sides[0] * sides[-1]

    return min(styles.values(), key=area, default=None)


def format_for_extension(extension: str) -> str:
    """Return the Pillow format stored under ``extension`` (``".jpg"``), else ``""``."""
    extension = extension.lower()
    if extension == ".jpeg":
        return "JPEG"
    return next((fmt for fmt, ext in EXTENSIONS.items() if ext == extension), "")


def parse_styles(styles: Mapping[str, Any] | None) -> dict[str, Style]:
    """Normalise a field's ``styles=`` declaration, raising ``StyleError``."""
    if styles is None:
        return {}
    if not isinstance(styles, Mapping):
        raise StyleError("styles must be a dict of style name to geometry.")
    return {name: _parse_style(name, spec) for name, spec in styles.items()}


def _parse_style(name: Any, spec: Any) -> Style:
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise StyleError(
            f"Style name {name!r} must be a Python identifier of at most 50 characters "
            f"and not one of {sorted(_RESERVED)}."
        )
    if isinstance(spec, str):
        options: dict[str, Any] = {"geometry": spec}
    elif isinstance(spec, tuple | list) and len(spec) == 2:
        options = {"geometry": spec[0], "format": spec[1]}
    elif isinstance(spec, Mapping):
        options = dict(spec)
    else:
        raise StyleError(
            f"Style {name!r}: expected 'WxH>', ('WxH>', 'png') or "
            f"{{'geometry': ..., 'format': ..., 'quality': ..., 'options': {{...}}}}, "
            f"got {spec!r}."
        )
    if "widths" in options:
        return _parse_responsive(name, options)
    if "formats" in options or "crop" in options:
        raise StyleError(f"Style {name!r}: 'formats' and 'crop' go with 'widths'.")
    unknown = set(options) - _KEYS
    if unknown:
        raise StyleError(f"Style {name!r}: unknown option(s) {sorted(unknown)}.")
    if not isinstance(options.get("geometry"), str):
        raise StyleError(f"Style {name!r}: 'geometry' must be a string such as '100x100>'.")
    try:
        geometry = parse_geometry(options["geometry"])
    except GeometryError as exc:
        raise StyleError(f"Style {name!r}: {exc}") from None
    fmt = _parse_format(name, options.get("format"))
    animated = options.get("animated", False)
    if not isinstance(animated, bool):
        raise StyleError(f"Style {name!r}: 'animated' must be True or False.")
    if animated and fmt is not None and fmt not in ANIMATED_FORMATS:
        raise StyleError(
            f"Style {name!r}: an animated style's format must be gif or webp "
            "(or none, keeping the original's)."
        )
    return Style(
        name=name,
        geometry=geometry,
        format=fmt,
        quality=_parse_quality(name, options.get("quality")),
        options=_parse_options(name, options.get("options")),
        processors=_parse_processors(name, options.get("processors")),
        animated=animated,
    )


def _parse_format(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in FORMATS:
        raise StyleError(f"Style {name!r}: format {value!r} is not one of {sorted(set(FORMATS))}.")
    return FORMATS[value.lower()]


def _parse_quality(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise StyleError(f"Style {name!r}: quality must be an integer from 1 to 100.")
    return value


def _parse_options(name: str, value: Any) -> tuple[tuple[str, str | int | float | bool], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(option, _OPTION_TYPES) for key, option in value.items()
    ):
        raise StyleError(
            f"Style {name!r}: options must be a dict of encoder option names to strings, "
            "numbers or booleans, e.g. {'lossless': True}."
        )
    reserved = {"quality", "icc_profile"} & set(value)
    if reserved:
        raise StyleError(f"Style {name!r}: set {sorted(reserved)} outside 'options'.")
    return tuple(sorted(value.items()))


def _parse_processors(name: str, value: Any) -> tuple[Processor, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        value = [value]  # one processor needs no list around it
    if not all(_DOTTED.match(item) if isinstance(item, str) else callable(item) for item in value):
        raise StyleError(
            f"Style {name!r}: processors must be callables or dotted paths to them, "
            "e.g. ['attachments.processors.grayscale']."
        )
    return tuple(Processor.of(item) for item in value)


def _parse_responsive(name: str, options: dict[str, Any]) -> Style:
    unknown = set(options) - _RESPONSIVE_KEYS
    if unknown:
        raise StyleError(
            f"Style {name!r}: a style with 'widths' takes {sorted(_RESPONSIVE_KEYS)}, "
            f"not {sorted(unknown)} (its geometry comes from its widths and crop)."
        )
    widths = options["widths"]
    if (
        not isinstance(widths, list | tuple)
        or not widths
        or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)
        or len(set(widths)) != len(widths)
    ):
        raise StyleError(
            f"Style {name!r}: 'widths' must be a list of distinct positive integers, "
            f"e.g. [320, 640, 1280], not {widths!r}."
        )
    formats = options.get("formats", [])
    if isinstance(formats, str) or not isinstance(formats, list | tuple):
        raise StyleError(f"Style {name!r}: 'formats' must be a list, e.g. ['avif', 'jpeg'].")
    parsed = tuple(
        _parse_format(name, value if value is not None else "None") or "" for value in formats
    )
    if len(set(parsed)) != len(parsed):
        raise StyleError(f"Style {name!r}: 'formats' names a format twice: {formats!r}.")
    crop, gravity = _parse_crop(name, options.get("crop"))
    style = Style(
        name=name,
        geometry=Geometry(1, None),  # its widest width's, just below
        quality=_parse_quality(name, options.get("quality")),
        options=_parse_options(name, options.get("options")),
        processors=_parse_processors(name, options.get("processors")),
        widths=tuple(sorted(widths)),
        formats=parsed,
        crop=crop,
        gravity=gravity,
    )
    try:
        return replace(style, geometry=style.width_geometry(max(widths)))
    except GeometryError as exc:
        raise StyleError(f"Style {name!r}: {exc}") from None


def _parse_crop(name: str, value: Any) -> tuple[tuple[int, int] | None, str]:
    if value is None:
        return None, ""
    match = _ASPECT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise StyleError(
            f"Style {name!r}: 'crop' must be an aspect ratio such as '16:9', maybe with a "
            f"gravity as a '#' geometry takes it ('16:9#north', '1:1#0.3,0.7'), not {value!r}."
        )
    gravity = (match["gravity"] or "#")[1:]
    try:
        parse_geometry(f"{match['w']}x{match['h']}#{gravity}")
    except GeometryError as exc:
        raise StyleError(f"Style {name!r}: 'crop' {value!r}: {exc}") from None
    return (int(match["w"]), int(match["h"])), gravity
