"""Print the expectations table of tests/test_geometry.py, measured with real ImageMagick.

Usage (needs ImageMagick 6, e.g. ``apt-get install imagemagick``):

    python tests/tools/imagemagick_geometry_table.py [--convert /usr/bin/convert] > table.txt

and paste the output over the table in tests/test_geometry.py. Nothing here imports
attachments.geometry: the numbers come from ``convert``, so the test checks our port of
ImageMagick's arithmetic against ImageMagick itself.

Each case makes a blank canvas of the source size (``xc:``) and resizes it:

* plain geometries run ``-resize GEOM`` and record the result's size;
* ``WxH#`` runs what Paperclip's Thumbnail runs (``-resize Wx`` or ``-resize xH``, then
  ``-crop WxH+X+Y +repage``) with the offsets Paperclip's Geometry#transformation_to
  computes, transcribed below; the crop's page offset is read back from ImageMagick,
  and ``-gravity center -crop`` is run too so that the table notes where the two differ;
* ``WxH#NAME`` (a gravity) runs Paperclip's resize, then ``-gravity NAME -crop WxH+0+0``;
* geometries for which ImageMagick fails (a side rounds to 0) go to a separate list;
* cases whose result exceeds the pixel-cache policy (16K a side on Debian) are left out
  and named on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# (source width, source height, geometry). Sources include 1-pixel sides and extreme
# aspect ratios; geometries cover each flag, exact fits, enlargement and x.5 rounding.
_SOURCES = [(500, 300), (300, 500), (100, 100), (1, 1), (1, 118), (118, 1), (1, 5000)]
_EXTREME = [(10000, 3), (3, 10000)]
_PER_SOURCE = [
    "100x100",
    "100x100>",
    "100x100<",
    "100x100^",
    "100x100!",
    "100x100#",
    "100x",
    "x100",
    "50%",
    "10000@",
    "10000@>",
]
_EXTRA = [
    # Exact fits and "already fits" for > and <.
    (500, 300, "500x300"),
    (500, 300, "500x300>"),
    (500, 300, "500x300<"),
    (500, 300, "500x300#"),
    (500, 300, "600x600>"),
    (500, 300, "400x400<"),
    (500, 300, "1000x1000<"),
    (500, 300, "1000x1000"),
    (500, 300, "1000x"),
    (500, 300, "x1000>"),
    (500, 300, "100x>"),
    (500, 300, "x100<"),
    (500, 300, "100"),
    (500, 300, "100^"),
    (500, 300, "x100^"),
    (500, 300, "100x!"),
    (500, 300, "x100!"),
    (500, 300, "1x1"),
    (500, 300, "1x1!"),
    (500, 300, "1x1^"),
    (500, 300, "1x1#"),
    # x.5 rounds up (floor(x + 0.5)), unlike Python's round-half-to-even.
    (200, 101, "100x"),
    (200, 105, "100x"),
    (200, 103, "100x"),
    (101, 200, "x100"),
    (105, 200, "x100"),
    (3, 3, "50%"),
    (5, 5, "50%"),
    (101, 3, "50%"),
    (7, 3, "150%"),
    (1023, 767, "640x480"),
    (1023, 767, "640x480^"),
    (1023, 767, "640x480#"),
    (1023, 767, "33%"),
    (640, 480, "64x64#"),
    (480, 640, "64x64#"),
    (640, 480, "300x100#"),
    (640, 480, "100x300#"),
    (100, 200, "51x51#"),
    (200, 100, "51x51#"),
    (201, 101, "50x50#"),
    (101, 201, "50x50#"),
    (333, 333, "100x100#"),
    (7, 3, "5x5#"),
    (3, 7, "5x5#"),
    (7, 3, "200x200#"),
    (10000, 3, "50x50#"),
    (3, 10000, "50x50#"),
    (10000, 3, "1x1#"),
    (50, 50, "100x100^"),
    (50, 25, "100x100^"),
    (50, 25, "100x100<"),
    (50, 25, "100x100>"),
    (1, 118, "1x"),
    (118, 1, "x1"),
    (118, 1, "1x1"),
    (1, 5000, "100x100^"),
    (1, 5000, "200x200>"),
    # Extremes that stay under Debian's 16K-pixels-a-side policy limit.
    (1, 5000, "3x"),
    (1, 5000, "3x3^"),
    (1, 5000, "3x3#"),
    (10000, 3, "x4"),
    (10000, 3, "4x4^"),
    (10000, 3, "3x3#"),
    (3, 10000, "4x"),
    (3, 10000, "3x3#"),
    (10000, 3, "1x1"),
    (10000, 3, "1x1^"),
    # "W^" with W equal to the source width skips ImageMagick's arithmetic; "xH^" never does.
    (3, 2, "3^"),
    (2, 3, "3^"),
    (3, 2, "x2^"),
    (2, 3, "x3^"),
    (3, 2, "3x2^"),
    (2, 3, "3x2^"),
    # Percentages, including the x50% / 50%x asymmetry and decimals.
    (500, 300, "12.5%"),
    (500, 300, "150%"),
    (500, 300, "200%"),
    (500, 300, "50%x25%"),
    (500, 300, "50x25%"),
    (500, 300, "50%x"),
    (500, 300, "x50%"),
    (500, 300, "100%"),
    (500, 300, "1%"),
    (10000, 3, "10%"),
    (1, 5000, "10%"),
    (3, 3, "10%"),
    # Areas: "@" may enlarge, "@>" never does; results are truncated.
    (500, 300, "48000@"),
    (500, 300, "48000@>"),
    (500, 300, "150000@>"),
    (500, 300, "150001@"),
    (500, 300, "1000000@"),
    (500, 300, "1000000@>"),
    (100, 100, "2@"),
    (100, 100, "1@"),
    (100, 100, "10000@"),
    (100, 100, "9999@"),
    # Exact areas that only land on whole sizes thanks to ImageMagick's epsilon.
    (640, 480, "2764800@"),
    (1, 2, "18@"),
    (640, 480, "100@"),
    (7, 3, "100@"),
    (1, 1, "1@"),
    (1, 1, "2@"),
    (10000, 3, "100@"),
    (3, 10000, "100@"),
    (10000, 3, "100000@>"),
    (1, 5000, "1000@>"),
]


_GRAVITY_SOURCES = [(640, 480), (480, 640), (1000, 333), (333, 1000), (401, 299)]
_GRAVITIES = [
    "northwest",
    "north",
    "northeast",
    "west",
    "center",
    "east",
    "southwest",
    "south",
    "southeast",
]


def _cases() -> list[tuple[int, int, str]]:
    cases = [(w, h, g) for (w, h) in _SOURCES + _EXTREME for g in _PER_SOURCE]
    cases += _EXTRA
    cases += [
        (w, h, f"{size}#{gravity}")
        for (w, h) in _GRAVITY_SOURCES
        for size in ("200x200", "150x100")
        for gravity in _GRAVITIES
    ]
    return list(dict.fromkeys(cases))


def _paperclip_crop(src_w: int, src_h: int, width: int, height: int) -> tuple[str, int, int]:
    """Paperclip's Geometry#transformation_to(dst, crop=true): (scale, x offset, y offset)."""
    ratio_w = width / float(src_w)
    ratio_h = height / float(src_h)
    if ratio_h <= ratio_w:  # ratio.horizontal? || ratio.square?
        return f"{width}x", 0, int((src_h * ratio_w - height) / 2)
    return f"x{height}", int((src_w * ratio_h - width) / 2), 0


class _Refused(Exception):
    """ImageMagick would not do it; the message is its stderr."""


def _convert(convert: str, *args: str) -> list[int]:
    result = subprocess.run([convert, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stderr.strip():
        raise _Refused(result.stderr.strip())
    return [int(v) for v in result.stdout.split()]


def _measure(convert: str, w: int, h: int, geometry: str) -> str:
    """One table row: ImageMagick's result for this source size and geometry."""
    canvas = [convert, "-size", f"{w}x{h}", "xc:white"]
    if "#" not in geometry:
        size = _convert(*canvas, "-resize", geometry, "-format", "%w %h", "info:")
        return f'(({w}, {h}), "{geometry}", ({size[0]}, {size[1]}), None),'
    size, gravity = geometry.split("#")
    cw, ch = (int(v) for v in size.split("x"))
    scale, x, y = _paperclip_crop(w, h, cw, ch)
    resized = _convert(*canvas, "-resize", scale, "-format", "%w %h", "info:")
    crop = ["-crop", f"{cw}x{ch}+{x}+{y}"]
    if gravity:
        crop = ["-gravity", gravity, "-crop", f"{cw}x{ch}+0+0"]
    fw, fh, left, top = _convert(
        *canvas, "-resize", scale, *crop, "-format", "%w %h %X %Y", "info:"
    )
    centre = ["-gravity", "center", "-crop", f"{cw}x{ch}+0+0"]
    cx, cy = _convert(*canvas, "-resize", scale, *centre, "-format", "%X %Y", "info:")
    note = f"  # -gravity center: +{cx}+{cy}" if (cx, cy) != (left, top) and not gravity else ""
    box = f"({left}, {top}, {left + fw}, {top + fh})"
    return f'(({w}, {h}), "{geometry}", ({resized[0]}, {resized[1]}), {box}),{note}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convert", default="/usr/bin/convert", help="ImageMagick's convert")
    options = parser.parse_args()
    version = subprocess.run(
        [options.convert, "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    rows: list[str] = []
    refused: list[str] = []
    skipped: list[str] = []
    for w, h, geometry in _cases():
        try:
            rows.append(_measure(options.convert, w, h, geometry))
        except _Refused as exc:
            # A side rounding to 0 is ImageMagick's arithmetic, worth a test; hitting the
            # pixel-cache policy limit (16K a side on Debian) says nothing about geometry.
            if "negative or zero image size" in str(exc):
                refused.append(f'(({w}, {h}), "{geometry}"),')
            else:
                skipped.append(f"{w}x{h} {geometry}: {exc}")
    version = version.removeprefix("Version: ").split(" http")[0]
    print("# Generated by tests/tools/imagemagick_geometry_table.py with")
    print(f"# {version}.")
    print("# (source size, geometry, resize, crop box)")
    print("IMAGEMAGICK_CASES = [")
    print("\n".join(f"    {row}" for row in rows))
    print("]")
    print()
    print("# ImageMagick refuses these ('negative or zero image size'); we clamp to 1.")
    print("IMAGEMAGICK_REFUSES = [")
    print("\n".join(f"    {row}" for row in refused))
    print("]")
    for line in skipped:
        print(f"skipped, ImageMagick could not run it: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
