"""Paperclip / ImageMagick geometry strings, and the exact output size they give.

A style's geometry (``"100x100>"``, ``"50%"``, ``"64x64#"`` ...) is parsed once into a
:class:`Geometry`; :meth:`Geometry.plan` then says, for one source size, what size to
scale the whole image to and which box to crop from it. Resampling is someone else's job.

The arithmetic is a transcription of ImageMagick 6's ``ParseMetaGeometry`` (what
``convert -resize GEOM`` uses), including its rounding, because people migrating from
Paperclip compare our thumbnails with the ones they already have, pixel for pixel.
``#`` is not ImageMagick's: it is Paperclip's ``Geometry#transformation_to``, i.e.
``-resize Wx`` (or ``xH``) then ``-crop WxH+X+Y +repage`` with offsets Paperclip computes.

``Geometry.flag`` is the trailing modifier as written in the canonical string:

=======  =============================================================================
``""``   fit inside WxH, keep aspect, may enlarge (``W``/``Wx`` and ``xH`` fix one side)
``">"``  like ``""`` but only ever shrink
``"<"``  like ``""`` but only ever enlarge
``"^"``  fill: the smaller scale that makes both sides at least WxH, keep aspect
``"!"``  exactly WxH, aspect ignored (a missing side keeps the source's)
``"#"``  Paperclip crop: fill WxH, then cut the centre out; output is exactly WxH.
         A gravity may follow: ImageMagick's names (``"200x200#north"``,
         ``"#southeast"``...: where ``-gravity NAME -crop`` cuts) or a point
         (``"200x200#0.3,0.7"``: fractions of the width and height, from the
         top left, kept as near the middle of the output as the image allows)
``"%"``  ``width``/``height`` are percentages (a missing width means 100, a missing
         height means "same as width" -- ImageMagick's own asymmetry)
``"@"``  ``width`` is an area in pixels (``height`` is None); keep aspect
``"@>"`` like ``"@"`` but only ever shrink
=======  =============================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["FLAGS", "GRAVITIES", "Geometry", "GeometryError", "Plan", "parse_geometry"]

FLAGS = ("", ">", "<", "^", "!", "#", "%", "@", "@>")
# ImageMagick's gravities, as (horizontal, vertical): 0 start, 1 middle, 2 end.
GRAVITIES = {
    "northwest": (0, 0),
    "north": (1, 0),
    "northeast": (2, 0),
    "west": (0, 1),
    "center": (1, 1),
    "east": (2, 1),
    "southwest": (0, 2),
    "south": (1, 2),
    "southeast": (2, 2),
}
# A point in the image, (x, y) as fractions of its width and height from the top left.
Point = tuple[float, float]
_POINT = re.compile(r"(?P<x>\d+(?:\.\d+)?),(?P<y>\d+(?:\.\d+)?)")

# ImageMagick masks parsed sizes with 0x7fffffff; refuse instead of silently wrapping.
_MAX = 0x7FFFFFFF
# MagickEpsilon in ImageMagick 6; "@" adds sqrt(it) to the area so that e.g. 10000@ on a
# square lands on 100x100 and not 99x99 after truncation.
_MAGICK_EPSILON = 1.0e-12

_NUMBER = r"\d+(?:\.\d+)?"
_SYNTAX = re.compile(
    rf"(?P<w>{_NUMBER})?(?P<wp>%)?"
    rf"(?:(?P<sep>[xX])(?P<h>{_NUMBER})?(?P<hp>%)?)?"
    r"(?P<flag>@>|>@|[<>^!#@])?"
)
_FLAG_CHARS = set("<>^!#@%")
_HINT = "expected e.g. '100x100', '100x', 'x100', '100x100>', '64x64#', '50%' or '10000@'"


class GeometryError(ValueError):
    """A geometry string (or a Geometry built by hand) that cannot be used."""


@dataclass(frozen=True)
class Plan:
    """What to do to one source image: scale it to ``resize``, then maybe crop."""

    resize: tuple[int, int]
    # (left, top, right, bottom) inside the resized image, as Pillow's Image.crop wants.
    crop: tuple[int, int, int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        if self.crop is None:
            return self.resize
        left, top, right, bottom = self.crop
        return (right - left, bottom - top)


@dataclass(frozen=True)
class Geometry:
    """A parsed geometry; see the module docstring for what ``flag`` means."""

    width: float | None
    height: float | None
    flag: str = ""
    # Where a "#" crop cuts: a name of GRAVITIES or a Point; None is Paperclip's centre.
    gravity: str | Point | None = None

    def __post_init__(self) -> None:
        problem = _problem(self.width, self.height, self.flag) or _gravity_problem(
            self.gravity, self.flag
        )
        if problem:
            raise GeometryError(
                f"Geometry(width={self.width!r}, height={self.height!r}, flag={self.flag!r}, "
                f"gravity={self.gravity!r}) is not a valid geometry: {problem}"
            )
        # Normalise 100.0 to 100 so that equal geometries compare and print equally.
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))

    def __str__(self) -> str:
        w = "" if self.width is None else _fmt(self.width)
        h = "" if self.height is None else _fmt(self.height)
        if self.flag == "%":
            if self.height is None:
                return f"{w}%"
            return f"{w}%x{h}%" if w else f"x{h}%"
        if self.flag in ("@", "@>") or self.height is None:
            # Width only is written "W", as Paperclip writes it, and "W^" plans that way.
            return f"{w}{self.flag}"
        return f"{w}x{h}{self.flag}{_gravity_str(self.gravity)}"

    def plan(self, width: int, height: int, *, focus: Point | None = None) -> Plan:
        """The resize (and crop) that turns a ``width`` x ``height`` source into the output.

        ``focus``, an image's own focal point, overrides the geometry's gravity:
        a ``#`` crop keeps it in frame, as near the output's middle as it can.
        """
        if width < 1 or height < 1:
            raise ValueError(f"source size must be at least 1x1, got {width}x{height}")
        if focus is not None and _gravity_problem(focus, "#"):
            raise ValueError(f"focus must be a point (x, y) within 0..1, got {focus!r}")
        if self.flag == "%":
            return Plan(_percent(width, height, self.width, self.height))
        # Every other flag has whole-pixel sizes (checked in __post_init__).
        w = None if self.width is None else int(self.width)
        h = None if self.height is None else int(self.height)
        if self.flag == "#" and w is not None and h is not None:
            return _crop(width, height, w, h, focus or self.gravity)
        if self.flag in ("@", "@>") and w is not None:
            return Plan(_area(width, height, w, shrink_only=self.flag == "@>"))
        return Plan(_meta(width, height, w, h, self.flag))


def parse_geometry(spec: str) -> Geometry:
    """Parse a Paperclip-style geometry string; raise GeometryError saying what is wrong."""
    if not isinstance(spec, str):
        raise GeometryError(f"{spec!r} is not a valid geometry: it must be a string")
    text = spec.strip()

    def error(reason: str) -> GeometryError:
        return GeometryError(f"{spec!r} is not a valid geometry: {reason}")

    if not text:
        raise error("it is empty")
    if any(c.isspace() for c in text):
        raise error("no spaces allowed inside it")
    sign = re.search(r"[+-]", text)
    if sign:
        # A sign at the start or straight after the 'x' is a negative size; anywhere else
        # it starts an offset, which only means something to -crop/-extent, not -resize.
        if sign.start() == 0 or text[sign.start() - 1] in "xX":
            raise error("sizes cannot be negative or signed")
        raise error("offsets such as '+10+10' are not supported in a style geometry")
    if text[0] in _FLAG_CHARS:
        raise error(f"the flag {text[0]!r} must come at the end, e.g. '100x100{text[0]}'")
    gravity = None
    size, hash_, after = text.partition("#")
    if after and not set(after) <= _FLAG_CHARS:  # "64x64#>" is two flags, said below
        text, gravity = size + hash_, _parse_gravity(after, error)
    match = _SYNTAX.fullmatch(text)
    if match is None:
        # Name the flag when the size before it is fine, the commonest slip.
        tail = re.search(r"[^\dxX.%]+$", text)
        if tail and _SYNTAX.fullmatch(text[: tail.start()]):
            if set(tail.group()) <= _FLAG_CHARS:
                raise error(f"only one flag is allowed (or '@>'), got {tail.group()!r}")
            if tail.group()[0] in _FLAG_CHARS and tail.group()[1:].lower() in GRAVITIES:
                raise error(_gravity_problem(tail.group()[1:], tail.group()[0]) or _HINT)
            raise error(f"unknown flag {tail.group()!r}; {_HINT}")
        raise error(_HINT)

    w, h, flag = match["w"], match["h"], match["flag"] or ""
    if match["wp"] or match["hp"]:
        if flag:
            raise error(f"a percentage cannot be combined with the flag {flag!r}")
        # ImageMagick reads "50%x30" as 50%x30%, but that looks like a mix of percent and
        # pixels, which ImageMagick does not support; make the writer say which they meant.
        if match["wp"] and h is not None and not match["hp"]:
            raise error("write the height as a percentage too, e.g. '50%x30%'")
        flag = "%"
    elif "." in text:
        raise error("sizes must be whole pixels (only percentages may have decimals)")
    if flag == ">@":
        flag = "@>"
    if flag in ("@", "@>") and (match["sep"] or w is None):
        raise error("an area is a single number of pixels, e.g. '10000@' or '10000@>'")

    problem = _problem(_number(w), _number(h), flag) or _gravity_problem(gravity, flag)
    if problem:
        raise error(problem)
    return Geometry(_number(w), _number(h), flag, gravity)


def _parse_gravity(text: str, error: Callable[[str], GeometryError]) -> str | Point:
    name = text.lower().replace("centre", "center")
    if name in GRAVITIES:
        return name
    point = _POINT.fullmatch(text)
    if point is None:
        raise error(
            f"unknown gravity {text!r}; expected one of {', '.join(GRAVITIES)} "
            "or a point such as '0.3,0.7' (fractions of the width and height)"
        )
    return (_number(point["x"]) or 0, _number(point["y"]) or 0)


def _gravity_problem(gravity: object, flag: str) -> str | None:
    if gravity is None:
        return None
    if flag != "#":
        return "a gravity only applies to '#' crops, e.g. '200x200#north'"
    if isinstance(gravity, str):
        return None if gravity in GRAVITIES else f"unknown gravity {gravity!r}"
    if (
        isinstance(gravity, tuple)
        and len(gravity) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in gravity)
        and all(0 <= v <= 1 for v in gravity)
    ):
        return None
    return f"a gravity point is (x, y), each a fraction from 0 to 1, not {gravity!r}"


def _gravity_str(gravity: str | Point | None) -> str:
    if gravity is None:
        return ""
    if isinstance(gravity, str):
        return gravity
    return f"{_fmt(gravity[0])},{_fmt(gravity[1])}"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _fmt(value: float) -> str:
    # Via Decimal so that 0.00001 prints as such, not as "1e-05" that would not parse back.
    return str(int(value)) if float(value).is_integer() else format(Decimal(repr(value)), "f")


def _problem(width: float | None, height: float | None, flag: str) -> str | None:
    """Why these fields make no geometry, or None; shared by the parser and the dataclass."""
    if flag not in FLAGS:
        return f"unknown flag {flag!r} (known: {' '.join(repr(f) for f in FLAGS)})"
    if width is None and height is None:
        return "it gives neither a width nor a height"
    for name, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"the {name} must be a number, not {value!r}"
        if not math.isfinite(value) or value <= 0:
            return f"the {name} must be greater than zero"
        if value > _MAX:
            return f"the {name} is too large (at most {_MAX})"
        if flag != "%" and not float(value).is_integer():
            return f"the {name} must be a whole number of pixels"
    if flag == "#" and (width is None or height is None):
        return "'#' crops to an exact size, so it needs both a width and a height"
    if flag in ("@", "@>") and (width is None or height is not None):
        return "an area geometry needs the area as width and no height"
    return None


def _round(value: float) -> int:
    # ImageMagick rounds with floor(x+0.5), i.e. halves go up, unlike Python's round().
    return math.floor(value + 0.5)


def _meta(
    src_w: int, src_h: int, width: int | None, height: int | None, flag: str
) -> tuple[int, int]:
    """ImageMagick's ParseMetaGeometry for pixel sizes; never 0, it clamps to 1 itself."""
    # A side the geometry leaves out keeps the source's value, as in GetGeometry.
    w = src_w if width is None else width
    h = src_h if height is None else height
    # ImageMagick skips the arithmetic when the parsed size equals the source's. Its parser
    # zeroes a missing side written next to the "x" ("Wx", "xH"), so only "W" and "WxH" can
    # take this shortcut; it only shows with "^": "3^" leaves a 3x2 image alone while
    # "3x^" makes it 5x3. We always behave like "W^", which is what Paperclip sends (its
    # Geometry#to_s drops the "x"), so "Wx^" differs from raw ImageMagick in that one case.
    if flag == "!" or (width == src_w and h == src_h):
        pass
    else:
        if width is not None and height is not None:
            pick = max if flag == "^" else min
            scale = pick(w / src_w, h / src_h)
        elif width is not None:
            scale = w / src_w
            # "W^" is read as "WxW^": the shorter side must reach W.
            if flag == "^":
                scale = max(scale, w / src_h)
        else:
            scale = h / src_h
            if flag == "^":
                scale = max(scale, h / src_w)
        w = max(_round(scale * src_w), 1)
        h = max(_round(scale * src_h), 1)
    # Per side, not per scale: one scale drives both sides, so they never disagree.
    if flag == ">":
        w, h = min(w, src_w), min(h, src_h)
    elif flag == "<":
        w, h = max(w, src_w), max(h, src_h)
    return (w, h)


def _percent(src_w: int, src_h: int, width: float | None, height: float | None) -> tuple[int, int]:
    # "x50%" keeps the width (100%), while "50%" and "50%x" scale both sides by 50%.
    sx = 100.0 if width is None else float(width)
    sy = sx if height is None else float(height)
    # ImageMagick fails with "negative or zero image size" here; a style must not.
    return (
        max(_round(sx * src_w / 100.0), 1),
        max(_round(sy * src_h / 100.0), 1),
    )


def _reciprocal(x: float) -> float:
    # ImageMagick's PerceptibleReciprocal, kept so that the division order matches.
    sign = -1.0 if x < 0 else 1.0
    return 1.0 / x if sign * x >= _MAGICK_EPSILON else sign / _MAGICK_EPSILON


def _area(src_w: int, src_h: int, area: int, *, shrink_only: bool) -> tuple[int, int]:
    # ImageMagick first resizes as if "N@" were the width "N" (clamped to the source size
    # for "@>"), and only replaces that by the area-scaled size when the first result is
    # larger on either side. So "N@>" leaves an image under N pixels alone, and "N@" on a
    # source wider than N:1 can end up with either result.
    w, h = _meta(src_w, src_h, area, None, ">" if shrink_only else "")
    root = math.sqrt(area + math.sqrt(_MAGICK_EPSILON))
    factor = _reciprocal(math.sqrt(float(src_w) * src_h) * _reciprocal(root))
    scale_x, scale_y = src_w * factor, src_h * factor
    if scale_x < w or scale_y < h:
        # Truncated, not rounded, and not clamped to 1 by ImageMagick (which then fails
        # on very thin images); we clamp.
        w, h = int(scale_x), int(scale_y)
    return (max(w, 1), max(h, 1))


def _crop(src_w: int, src_h: int, width: int, height: int, gravity: str | Point | None) -> Plan:
    # Paperclip's transformation_to: scale by the side that needs the larger ratio (width
    # on a tie), via "-resize Wx" / "-resize xH", then "-crop WxH+X+Y". Its offset is
    # computed from the unrounded scaled size and truncated (Ruby's "%d"), which is not
    # always what "-gravity center -crop" gives (that halves each size separately); we
    # follow Paperclip so migrated thumbnails come out identical. A named gravity places
    # the box as ImageMagick's "-gravity NAME -crop WxH+0+0" does; a point centres it
    # on the point, moved only as far as needed to stay inside the image.
    ratio_w = width / float(src_w)
    ratio_h = height / float(src_h)
    if ratio_h <= ratio_w:
        resize = _meta(src_w, src_h, width, None, "")
        paperclip = (0, int((src_h * ratio_w - height) / 2))
    else:
        resize = _meta(src_w, src_h, None, height, "")
        paperclip = (int((src_w * ratio_h - width) / 2), 0)
    if gravity is None:
        left, top = paperclip
    elif isinstance(gravity, str):
        across, down = GRAVITIES[gravity]
        left = _gravity_offset(resize[0], width, across)
        top = _gravity_offset(resize[1], height, down)
    else:
        left = _focus_offset(resize[0], width, gravity[0])
        top = _focus_offset(resize[1], height, gravity[1])
    # The scaled size always covers WxH, so -crop never clips; keep the box honest anyway.
    right, bottom = min(left + width, resize[0]), min(top + height, resize[1])
    return Plan(resize, (left, top, right, bottom))


def _gravity_offset(size: int, crop: int, where: int) -> int:
    # ImageMagick's GravityAdjustGeometry: the middle is size/2 - crop/2, each halved
    # in integers; the end is size - crop.
    if where == 0:
        return 0
    if where == 1:
        return max(size // 2 - crop // 2, 0)
    return max(size - crop, 0)


def _focus_offset(size: int, crop: int, point: float) -> int:
    return min(max(_round(point * size - crop / 2), 0), max(size - crop, 0))
