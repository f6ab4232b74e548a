"""Decoding: the original opened once for every style, decoded as small as they allow.

A JPEG is decoded at a DCT scale, anything larger box-reduced; the pixels are
counted against the memory budget before they are decoded. An animation's
further frames are read from the same opened file, one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageCms, ImageFile

from .. import plan
from ..exceptions import ImageTooLarge
from ..geometry import Point
from ..styles import Style
from .colour import _cmyk_to_rgb, _normalise, _srgb_transform
from .probing import (
    _TO_STORED,
    _UNREADABLE,
    _decoding,
    _format,
    _open_image,
    _orientation,
    _readable,
    _too_large,
    _upright_size,
)

# A JPEG is decoded at 1/2, 1/4 or 1/8 size (libjpeg's DCT scaling: each pixel the
# mean of a block) while that leaves at least this many times the largest resize, and
# anything still larger is shrunk by a whole factor (Image.reduce, a box filter) down to
# it; LANCZOS does the rest. On the 45 wallpaper JPEGs of benchmarks/corpus.py, against
# a full-size decode and LANCZOS: at 1 (just covering the resize) a grey photo's square
# style strayed further than quality-85 encoding does (by 2.6 dB); at 1.25 every style
# stayed 5.7 dB under that loss, as at 2, but pixel-sized random detail then strays 2.9
# grey levels on average (test_render_matches_a_full_size_lanczos allows 2), which takes
# about 1.85 to hold. So 2 stays, Pillow's thumbnail() default and libvips' too.
_DRAFT_GAP = 2.0
_REDUCE_GAP = 2.0

# Bytes Pillow hands the decoder per call (its default: 64 KiB). Each call gives
# the GIL back and must take it again, and a thread that wants it back waits up
# to the switch interval (5 ms) while another thread runs Python. Two threads
# rendering the worker benchmark's 90 photos, each followed by 6 ms of Python (a
# job's database work), ran 1.78x as fast as one at 64 KiB, 1.92x at 1 MiB; one
# thread alone is as fast either way. It costs a buffer this size.
_DECODE_BLOCK = 1 << 20

# Resampling must average colours weighted by alpha, or transparent pixels' colours bleed.
_PREMULTIPLIED = {"LA": "La", "RGBA": "RGBa"}


@dataclass(frozen=True)
class _Source:
    """The one decode shared by every style, and how it relates to the original."""

    image: Image.Image  # "L", "La", "RGB" or "RGBa": alpha premultiplied for resampling
    orientation: int
    size: tuple[int, int]  # original, upright
    scale: float  # original pixels per decoded pixel
    to_srgb: ImageCms.ImageCmsTransform | None  # from the original's colour profile


def _frames(
    header: _Header, first: _Source, max_pixels: int, max_frames: int
) -> Iterator[tuple[_Source, int]]:
    """Every frame of ``header``'s image, ready to resample, with its duration in ms.

    Raises ``ImageTooLarge`` before decoding a frame past ``max_frames``, or
    one that would take the frames' pixels past ``max_pixels``.
    """
    im = header.image
    width, height = im.size
    index = 0
    while True:
        with _decoding(_UNREADABLE):
            try:
                im.seek(index)  # reads the frame's header, not its pixels
            except EOFError:
                return
        if index >= max_frames:
            # In English, as the other errors of one style are: kept on the record for staff.
            raise ImageTooLarge(
                "The animation has more than %(max)s frames, the most an animated style keeps.",
                params={"max": max_frames},
            )
        if (index + 1) * width * height > max_pixels:
            raise _too_large(
                "The animation's frames have more than %(max)s pixels in all (%(width)dx"
                "%(height)d each), the most an animated style keeps.",
                max_pixels,
                width=width,
                height=height,
            )
        with _decoding(_UNREADABLE):
            im.load()
            duration = int(im.info.get("duration") or 0)
            # Every frame in one mode: Pillow gives a GIF's first frame as "P", the rest "RGB(A)".
            frame = im.convert("RGBA").convert("RGBa")
        yield _Source(frame, first.orientation, first.size, 1.0, first.to_srgb), duration
        index += 1


@dataclass
class _Header:
    """An opened image, nothing decoded yet, with what rendering it takes."""

    image: Image.Image  # drafted: a JPEG already set to decode at a DCT scale
    format: str
    icc: bytes | None
    orientation: int
    size: tuple[int, int]  # original, upright
    outputs: dict[str, plan.Output]
    need: list[int]  # the largest resize of any style, in stored orientation
    scale: float  # original pixels per decoded pixel
    footprint: int  # bytes the pixels will take at most while rendering
    animated: bool = False  # it has several frames, and a style wants them
    loop: int | None = None  # times an animation plays (0: forever); None: once, no loop


def _open(
    fp: IO[bytes],
    styles: Sequence[Style],
    max_pixels: int,
    qualities: dict[str, int],
    focus: Point | None,
) -> _Header:
    with _decoding(_UNREADABLE):
        im = _open_image(fp, _readable(), max_pixels)
        if isinstance(im, ImageFile.ImageFile):  # what every plugin opens
            im.decodermaxblock = _DECODE_BLOCK
        orientation = _orientation(im)
        size = _upright_size(im, orientation, max_pixels)
    swap = _TO_STORED[orientation][0]
    outputs = plan.outputs(styles, size, _format(im), qualities, focus)
    resizes = [output.geometry.resize for output in outputs.values()]
    need = [max((resize[i ^ swap] for resize in resizes), default=1) for i in (0, 1)]
    full = im.size
    # Read before the decode: the loop count is in the first frame's header.
    animated = any(o.animated for o in outputs.values()) and getattr(im, "is_animated", False)
    loop = im.info.get("loop")
    with _decoding(_UNREADABLE):
        scale = _draft(im, (int(need[0] * _DRAFT_GAP), int(need[1] * _DRAFT_GAP)))
    return _Header(
        im,
        _format(im),
        im.info.get("icc_profile"),
        orientation,
        size,
        outputs,
        need,
        scale,
        _footprint(im, full),
        animated,
        loop if isinstance(loop, int) else None,
    )


def _footprint(im: Image.Image, full: tuple[int, int]) -> int:
    """Bytes the pixels of ``im`` (drafted, ``full`` as stored) take at most while rendering.

    Decoded, a pixel takes up to 4 bytes (Pillow pads 3 channels to 4), and a
    converted copy may live beside the decode. A progressive JPEG also makes
    libjpeg keep every DCT coefficient of the whole image, 2 bytes each, until
    its last scan, at whatever scale it decodes: 3 bytes per pixel in 4:2:0.
    """
    footprint = 2 * 4 * im.width * im.height
    layers = getattr(im, "layer", None)  # JPEG components: (id, h, v, table)
    if im.info.get("progressive") and layers:
        h_max = max(layer[1] for layer in layers)
        v_max = max(layer[2] for layer in layers)
        per_pixel = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
        footprint += int(2 * per_pixel * full[0] * full[1])
    return footprint


def _decode(header: _Header) -> _Source:
    im, scale, need = header.image, header.scale, header.need
    to_srgb = None
    with _decoding(_UNREADABLE):
        im.load()
        if im.mode == "CMYK":
            im = _cmyk_to_rgb(im, header.icc)
        else:
            im = _normalise(im)
            to_srgb = _srgb_transform(header.icc, grey=im.mode in ("L", "LA"))
    if im.mode in _PREMULTIPLIED and im.getchannel("A").getextrema() == (255, 255):
        # Opaque throughout, as many exported PNGs are: the alpha channel says
        # nothing, and dropping it costs a fifth of premultiplying (one fast pass
        # against a slow one) and makes smaller files.
        im = im.convert(im.mode[:-1])
    if im.mode in _PREMULTIPLIED:
        # Before reduce(), which would otherwise convert there and back itself, and
        # once rather than inside every resize().
        im = im.convert(_PREMULTIPLIED[im.mode])
    factor = min(im.width // int(need[0] * _REDUCE_GAP), im.height // int(need[1] * _REDUCE_GAP))
    if factor >= 2:
        im, scale = im.reduce(factor), scale * factor
    return _Source(im, header.orientation, header.size, scale, to_srgb)


def _draft(im: Image.Image, target: tuple[int, int]) -> float:
    """Have libjpeg decode a JPEG at 1/2, 1/4 or 1/8 size, still at least ``target``.

    Returns the scale: original pixels per decoded pixel (1 for other formats).
    """
    width = im.width
    drafted = im.draft(None, target)
    # From the box, not the new size: at 1/2, 643 pixels are 321.5 decoded, stored in 322.
    return width / drafted[1][2] if drafted else 1.0
