"""Real image files, made in memory with Pillow, for tests.

Every picture is the same *pattern*: four solid quadrants, RED top left, GREEN
top right, BLUE bottom left, YELLOW bottom right. Solid quadrants survive
scaling and centre crops, so a test can tell from the colour of a corner
whether an image was rotated, mirrored or cropped the wrong way. Images with
transparency make the bottom-right quadrant fully transparent *black*: dropping
the alpha shows up as black, flattening onto white as white.

The file makers (``jpeg``, ``png``, ``gif``, ``webp`` ...) return encoded bytes;
``pattern``, ``palette``, ``detail`` and ``oriented`` return Pillow images to build
other files from. Sizes default to 64x48: fast, and large enough to downscale.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageDraw

SIZE = (64, 48)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
MAGENTA = (255, 0, 255)  # frames after the first of an animation are shades of it

# EXIF orientation -> the transpose that turns the displayed image into the
# stored one (the inverse of what a viewer applies).
_STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
_ORIENTATION = 0x0112

# A CMYK ICC profile, where the system has one (Debian's ghostscript ships it).
CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


def pattern(size: tuple[int, int] = SIZE, *, alpha: bool = False) -> Image.Image:
    """The four-quadrant picture as an RGB (or RGBA) image."""
    last = (0, 0, 0, 0) if alpha else YELLOW
    return _paint(Image.new("RGBA" if alpha else "RGB", size), (RED, GREEN, BLUE, last))


def palette(size: tuple[int, int] = SIZE, *, transparent: bool = False) -> Image.Image:
    """The pattern as a palette image; ``transparent`` makes the last quadrant transparent."""
    im = Image.new("P", size)
    im.putpalette([*RED, *GREEN, *BLUE, *YELLOW, 0, 0, 0])
    if transparent:
        im.info["transparency"] = 4
    return _paint(im, (0, 1, 2, 4 if transparent else 3))


def encode(im: Image.Image, format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format, **params)
    return buffer.getvalue()


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_profile() -> bytes:
    """A valid RGB profile that is not sRGB: sRGB with its red and blue primaries swapped.

    A pure red pixel tagged with it is a pure blue one in sRGB, and the other way round.
    """
    data = bytearray(srgb_profile())
    (count,) = struct.unpack_from(">I", data, 128)
    entries = {
        bytes(data[offset : offset + 4]): offset for offset in range(132, 132 + 12 * count, 12)
    }
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = (
        data[blue + 4 : blue + 12],
        data[red + 4 : red + 12],
    )
    # Its description (UTF-16) must not say sRGB, or it would be taken for one.
    return bytes(data).replace("sRGB".encode("utf-16-be"), "Swap".encode("utf-16-be"))


def linear_grey_profile() -> bytes:
    """A valid grey profile with a linear tone curve: mid grey 128 in it is 188 in sRGB."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))

    text = b"Linear grey\0"
    # textDescriptionType: ASCII, then empty Unicode and ScriptCode parts.
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 256) + b"\0\0"  # gamma 1.0
    d50 = xyz(0.9642, 1.0, 0.8249)
    tags = [(b"desc", desc), (b"wtpt", d50), (b"kTRC", curve)]
    table, data = b"", b""
    for signature, body in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", 128 + 4 + 12 * len(tags) + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (
        struct.pack(">I", 128 + len(body))
        + b"lcms"
        + struct.pack(">I", 0x02100000)  # version 2.1
        + b"mntrGRAYXYZ "
        + bytes(12)
        + b"acsp"
        + bytes(28)
        + d50[8:]  # the illuminant
        + bytes(48)
    )
    return header + body


def padded_profile(size: int, payload: bytes = b"<script>alert(1)</script>") -> bytes:
    """A valid sRGB profile followed by ``payload`` repeated up to ``size`` bytes."""
    profile = srgb_profile()
    return profile + payload * ((size - len(profile)) // len(payload) + 1)


def detail(size: tuple[int, int] = SIZE, seed: int = 1) -> Image.Image:
    """Random blotches a few pixels wide: any misplaced pixel changes the picture."""
    rng = random.Random(seed)
    small = (size[0] // 4 + 1, size[1] // 4 + 1)
    noise = bytes(rng.randrange(256) for _ in range(3 * small[0] * small[1]))
    return Image.frombytes("RGB", small, noise).resize(size, Image.Resampling.BICUBIC)


def oriented(picture: Image.Image, orientation: int) -> tuple[Image.Image, bytes]:
    """The pixels and EXIF block of a file that *displays* ``picture`` upright.

    The pixels are stored transformed (for 5-8 with width and height swapped),
    so that only a reader applying the orientation sees ``picture`` as it is.
    """
    exif = Image.Exif()
    exif[_ORIENTATION] = orientation
    stored = picture.transpose(_STORE[orientation]) if orientation in _STORE else picture
    return stored, exif.tobytes()


def jpeg(
    size: tuple[int, int] = SIZE,
    *,
    exif_orientation: int | None = None,
    cmyk: bool = False,
    icc: bool = False,
    quality: int = 95,
    picture: Image.Image | None = None,
) -> bytes:
    """A JPEG that *displays* as the upright pattern of ``size`` (or as ``picture``).

    ``exif_orientation`` stores it transformed, see ``oriented``. ``icc`` embeds an
    sRGB profile, or with ``cmyk`` the system's CMYK profile (converting the
    colours through it).
    """
    im = pattern(size) if picture is None else picture
    params: dict[str, Any] = {"quality": quality}
    if exif_orientation is not None:
        im, params["exif"] = oriented(im, exif_orientation)
    if cmyk and icc:
        profile = CMYK_PROFILE.read_bytes()
        im = ImageCms.profileToProfile(
            im, ImageCms.createProfile("sRGB"), io.BytesIO(profile), outputMode="CMYK"
        )
        params["icc_profile"] = profile
    elif cmyk:
        im = im.convert("CMYK")
    elif icc:
        params["icc_profile"] = srgb_profile()
    return encode(im, "JPEG", **params)


def jpeg_with_thumbnail(
    size: tuple[int, int] = (640, 480),
    *,
    orientation: int | None = None,
    thumbnail: bytes | None = None,
    thumbnail_size: tuple[int, int] | None = None,
    big_endian: bool = False,
    picture: Image.Image | None = None,
) -> bytes:
    """A JPEG displaying the pattern, with a camera's EXIF thumbnail of it in IFD1.

    The thumbnail is stored as the pixels are (``orientation`` applies to both),
    within 160x160; a ``thumbnail_size`` of another aspect ratio letterboxes it
    in black, as cameras do with 3:2 photos. ``thumbnail`` replaces it with any bytes.
    ``picture`` is shown instead of the pattern (``size`` is then its size).
    """
    stored, _exif = oriented(picture or pattern(size), orientation or 1)
    if thumbnail is None:
        small = stored.copy()
        small.thumbnail(thumbnail_size or (160, 160))
        box = thumbnail_size or small.size
        boxed = Image.new("RGB", box)
        boxed.paste(small, ((box[0] - small.width) // 2, (box[1] - small.height) // 2))
        thumbnail = encode(boxed, "JPEG", quality=90)
    exif = exif_with_thumbnail(thumbnail, orientation=orientation, big_endian=big_endian)
    return encode(stored, "JPEG", quality=90, exif=b"Exif\0\0" + exif)


def landscape(size: tuple[int, int] = (1200, 800)) -> Image.Image:
    """A photo-like picture for people to look at: sky, sun, hills, a lake."""
    width, height = size
    im = Image.new("RGB", size)
    draw = ImageDraw.Draw(im)
    for y in range(height):  # the sky, from deep blue to pale at the horizon
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(40 + 180 * t), int(90 + 130 * t), 230))
    draw.ellipse([width * 0.68, height * 0.12, width * 0.82, height * 0.33], fill=(255, 214, 90))
    draw.ellipse([-width * 0.3, height * 0.55, width * 0.7, height * 1.5], fill=(60, 140, 60))
    draw.ellipse([width * 0.35, height * 0.62, width * 1.4, height * 1.6], fill=(34, 100, 45))
    draw.rectangle([0, height * 0.85, width, height], fill=(40, 80, 160))
    return im


def exif_with_thumbnail(
    thumbnail: bytes, *, orientation: int | None = None, big_endian: bool = False
) -> bytes:
    """An EXIF block (a TIFF structure) as cameras write it: IFD0, then IFD1 naming ``thumbnail``.

    Pillow writes no IFD1, so it is built here: the TIFF header, IFD0 (the
    orientation), IFD1 (compression 6 = JPEG, the thumbnail's offset and
    length), then the thumbnail's bytes.
    """
    order = ">" if big_endian else "<"
    ifd0 = [(0x0112, 3, orientation)] if orientation else []
    ifd1_at = 8 + 2 + 12 * len(ifd0) + 4
    data_at = ifd1_at + 2 + 12 * 3 + 4
    ifd1 = [(0x0103, 3, 6), (0x0201, 4, data_at), (0x0202, 4, len(thumbnail))]

    def directory(entries: list[tuple[int, int, int]], next_at: int) -> bytes:
        packed = struct.pack(order + "H", len(entries))
        for tag, kind, value in entries:
            inline = struct.pack(order + ("H" if kind == 3 else "I"), value).ljust(4, b"\0")
            packed += struct.pack(order + "HHI", tag, kind, 1) + inline
        return packed + struct.pack(order + "I", next_at)

    header = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8)
    return header + directory(ifd0, ifd1_at) + directory(ifd1, 0) + thumbnail


def png(size: tuple[int, int] = SIZE, *, mode: str = "RGB", **params: Any) -> bytes:
    """A PNG of the pattern in ``mode``.

    "I;16" is instead a 16-bit horizontal gradient from 0 to 65535, and "1" is
    the pattern thresholded (red and blue quadrants black, the others white).
    """
    if mode == "I;16":
        width, height = size
        im = Image.new("I;16", size)
        im.putdata([x * 65535 // max(width - 1, 1) for x in range(width)] * height)
    elif mode == "1":
        im = pattern(size).convert("L").point(lambda v: 255 if v > 100 else 0).convert("1")
    elif mode in ("RGBA", "LA"):
        im = pattern(size, alpha=True).convert(mode)
    elif mode == "P":
        im = palette(size)
    else:
        im = pattern(size).convert(mode)
    return encode(im, "PNG", **params)


def png_palette_transparent(size: tuple[int, int] = SIZE) -> bytes:
    """A palette PNG whose bottom-right quadrant is a transparent palette entry."""
    return encode(palette(size, transparent=True), "PNG")


def gif(size: tuple[int, int] = SIZE, frames: int = 1, *, transparent: bool = False) -> bytes:
    """A GIF of the pattern; frames after the first are solid magenta shades."""
    first = palette(size, transparent=transparent)
    rest = [Image.new("RGB", size, _magenta(i)) for i in range(1, frames)]
    return encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def webp(size: tuple[int, int] = SIZE, alpha: bool = False, frames: int = 1) -> bytes:
    """A lossless WebP of the pattern; frames after the first are solid magenta shades."""
    first = pattern(size, alpha=alpha)
    rest = [Image.new(first.mode, size, _magenta(i)) for i in range(1, frames)]
    return encode(first, "WEBP", lossless=True, save_all=frames > 1, append_images=rest)


def mpo(size: tuple[int, int] = SIZE) -> bytes:
    """A multi-picture JPEG (as some cameras write): the pattern, then a magenta picture."""
    extra = Image.new("RGB", size, MAGENTA)
    return encode(pattern(size), "MPO", save_all=True, append_images=[extra])


def png_claiming(size: tuple[int, int]) -> bytes:
    """A PNG header declaring ``size`` and no pixel data: how a decompression bomb begins."""
    header = struct.pack(">IIBBBBB", *size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"")
        + png_chunk(b"IEND", b"")
    )


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` fraction of ``data``, as an interrupted upload leaves it."""
    return data[: int(len(data) * keep)]


def corrupted(data: bytes, at: float = 0.4, length: int = 48) -> bytes:
    """``data`` with ``length`` bytes inverted from the ``at`` fraction on, as bit rot leaves it."""
    start = int(len(data) * at)
    return (
        data[:start]
        + bytes(b ^ 0xFF for b in data[start : start + length])
        + data[start + length :]
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def halves(size: tuple[int, int] = (400, 200)) -> bytes:
    """A PNG whose left half is red and right half blue: where a crop cut is plain to see."""
    im = Image.new("RGB", size, (255, 0, 0))
    im.paste((0, 0, 255), (size[0] // 2, 0, *size))
    return encode(im, "PNG")


def _magenta(frame: int) -> tuple[int, int, int]:
    # Distinct per frame: encoders merge identical consecutive frames.
    return (255, 0, 256 - frame)


def _paint(im: Image.Image, colours: tuple[Any, Any, Any, Any]) -> Image.Image:
    """Fill the quadrants of ``im``: top left, top right, bottom left, bottom right."""
    width, height = im.size
    half_w, half_h = max(width // 2, 1), max(height // 2, 1)
    boxes = [
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    ]
    for colour, box in zip(colours, boxes, strict=True):
        im.paste(colour, box)
    return im
