"""Probing: what an upload's header says, read without decoding its pixels.

Also what probing and decoding share: the formats we open, the EXIF orientation,
Pillow's complaints turned into ``InvalidImage``, and Pillow's pixel limit made ours.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast

from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from .. import embedded, headers
from ..exceptions import ImageTooLarge, InvalidImage

DEFAULT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# Never opened, even if configured: Pillow hands EPS to Ghostscript, an interpreter
# we will not run on uploads. (SVG needs no entry: Pillow cannot read it at all.)
_NEVER = frozenset({"EPS"})

# Pillow format -> (extension, content type, name shown to users).
_TYPES = {
    "JPEG": (".jpg", "image/jpeg", "JPEG"),
    "PNG": (".png", "image/png", "PNG"),
    "GIF": (".gif", "image/gif", "GIF"),
    "WEBP": (".webp", "image/webp", "WebP"),
    "AVIF": (".avif", "image/avif", "AVIF"),
}

_UNREADABLE = _("The image cannot be read: the file is damaged, incomplete or not an image.")

_ORIENTATION = 0x0112
# Where Pillow's getexif() looks for the orientation; none is read if any is larger
# than this (a camera's EXIF fits in one 64 KiB JPEG segment; hex doubles it).
_ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp")
_METADATA_BYTES = 128 * 1024

# What a viewer does to the stored pixels to show an EXIF orientation upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The same, as a map from upright to stored coordinates: (swap axes, then mirror x, mirror y).
_TO_STORED = {
    1: (False, False, False),
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}


class _Typed:
    format: str

    @property
    def extension(self) -> str:
        """The canonical file extension, with its dot: ".jpg", ".png", ..."""
        if self.format in _TYPES:
            return _TYPES[self.format][0]
        Image.init()
        return next((ext for ext, fmt in Image.EXTENSION.items() if fmt == self.format), "")

    @property
    def content_type(self) -> str:
        if self.format in _TYPES:
            return _TYPES[self.format][1]
        return Image.MIME.get(self.format, "application/octet-stream")


@dataclass(frozen=True)
class ImageInfo(_Typed):
    """What the header of an image says; no pixels were decoded to learn it."""

    format: str  # Pillow's name, except that a multi-picture JPEG (MPO) is "JPEG"
    width: int  # as displayed, i.e. after the EXIF orientation (WebP: as stored)
    height: int
    mode: str  # as stored, e.g. "P" for GIF, "I;16" for 16-bit grey PNG, "CMYK"
    orientation: int = 1  # EXIF: what turns the stored pixels (and thumbnail) upright
    # The JPEG thumbnail embedded in the header's metadata (see ``embedded``), b"" if none.
    thumbnail: bytes = field(default=b"", repr=False)


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Return ``image`` (stored pixels) as an EXIF ``orientation`` displays it."""
    return image.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else image


def probe(fp: IO[bytes], *, max_pixels: int, formats: Collection[str] | None = None) -> ImageInfo:
    """Identify the image in ``fp`` from its header, or raise ``InvalidImage``.

    ``formats`` are the Pillow format names accepted (default ``DEFAULT_FORMATS``);
    only their parsers ever see the data. ``fp`` is read from its start and left
    rewound to it. Damage in the pixel data is found only by ``render``.

    The work is bounded whatever the file (see ``headers``): Pillow's parsers
    may make at most ``MAX_HEADER_READS`` reads of ``MAX_HEADER_BYTES`` in all
    (a longer header is refused), frames after the first are never looked at,
    orientation metadata is read only up to ``_METADATA_BYTES``, and a WebP's
    30-byte header is read here, its EXIF orientation (at its end) left to
    ``render``.
    """
    allowed = _readable(DEFAULT_FORMATS if formats is None else formats)
    names = ", ".join(_TYPES[fmt][2] if fmt in _TYPES else fmt for fmt in allowed)
    invalid = _("The file is not a valid image. Accepted formats: %(formats)s.")
    params = {"formats": names or _("none")}
    try:
        head = fp.read(headers.WEBP_HEADER)
        fp.seek(0)
        if "WEBP" in allowed and headers.is_webp(head):
            if (webp := headers.webp_header(head)) is None:
                raise InvalidImage(invalid, params=params)
            width, height, alpha = webp
            _check_pixels(width, height, max_pixels)
            return ImageInfo("WEBP", width, height, "RGBA" if alpha else "RGB")
        with _decoding(invalid, params):
            im = _open_image(headers.HeaderReader(fp), allowed, max_pixels)
            orientation = _orientation(im)
            width, height = _upright_size(im, orientation, max_pixels)
        # Only metadata the header reader has already read, and only what fits in memory.
        exif = im.info.get("exif")
        small = isinstance(exif, bytes) and len(exif) <= _METADATA_BYTES
        thumbnail = embedded.thumbnail(exif if small else None, getattr(im, "applist", ()))
        return ImageInfo(_format(im), width, height, im.mode, orientation, thumbnail)
    finally:
        fp.seek(0)


@contextmanager
def _decoding(message: object, params: dict[str, Any] | None = None) -> Iterator[None]:
    """Turn Pillow's complaints about the data into ``InvalidImage(message)``."""
    try:
        yield
    except OSError as exc:
        # Pillow reports bad data as a bare OSError; an errno or a subclass
        # (ConnectionError, TimeoutError, ...) means reading failed: retryable.
        if exc.errno is not None or type(exc) not in (OSError, UnidentifiedImageError):
            raise
        raise InvalidImage(message, params=params) from exc
    except (SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as exc:
        raise InvalidImage(message, params=params) from exc


def _open_image(
    fp: IO[bytes] | headers.HeaderReader, formats: list[str], max_pixels: int
) -> Image.Image:
    """``Image.open`` with our pixel limit in place of Pillow's ``MAX_IMAGE_PIXELS``."""
    try:
        with _pillow_limit.at_least(max_pixels):
            # The reader has the read, readline, seek and tell that Pillow uses of a file.
            return Image.open(cast(IO[bytes], fp), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses above twice its limit, now at least ours, inside open(),
        # before we see the size (the warning is raised only where warnings are errors).
        raise _too_large(
            _("The image has more than %(max)s pixels; the largest accepted is %(max)s pixels."),
            max_pixels,
        ) from exc


def _too_large(message: object, max_pixels: int, **params: object) -> ImageTooLarge:
    return ImageTooLarge(message, params={**params, "max": f"{max_pixels:,}"})


class _PillowLimit:
    """Lifts Pillow's ``MAX_IMAGE_PIXELS`` to at least ours while our opens run.

    Pillow checks its own process-wide limit inside ``Image.open`` (and inside
    plugins, before they allocate), so a project that lowered it would refuse
    images our ``max_pixels`` accepts, with Pillow's words. Where it is already
    as high as ours (Pillow's default, 89 MP, is above ours) nothing changes.
    The first of our concurrent opens to lift it saves it, and the last one out
    puts it back, unless the project changed it meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None
        self._lifted: int | None = None  # what we set it to, while we have it set

    @contextmanager
    def at_least(self, max_pixels: int) -> Iterator[None]:
        with self._lock:
            self._users += 1
            current = Image.MAX_IMAGE_PIXELS
            if current is not None and max_pixels > current:
                if self._lifted is None:
                    self._saved = current
                Image.MAX_IMAGE_PIXELS = self._lifted = max_pixels
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if not self._users and self._lifted is not None:
                    if self._lifted == Image.MAX_IMAGE_PIXELS:
                        Image.MAX_IMAGE_PIXELS = self._saved
                    self._lifted = None


_pillow_limit = _PillowLimit()


def _readable(formats: Collection[str] | None = None) -> list[str]:
    """``formats`` (default: all) that Pillow can open, for ``Image.open(formats=)``."""
    Image.init()
    names = Image.ID if formats is None else [fmt.upper() for fmt in formats]
    # Image.open raises KeyError for a name it has no plugin for (e.g. "SVG").
    return [fmt for fmt in dict.fromkeys(names) if fmt in Image.OPEN and fmt not in _NEVER]


def _format(im: Image.Image) -> str:
    # A multi-picture JPEG (as some cameras write) is a JPEG with pictures appended.
    return "JPEG" if im.format == "MPO" else str(im.format)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation from what the header gave; 1 if absent, unusable or oversized."""
    if any(len(im.info.get(key) or "") > _METADATA_BYTES for key in _ORIENTATION_SOURCES):
        # Parsing it takes a Python loop per EXIF entry and a search through XMP.
        return 1
    try:
        # The base method reads only what open() parsed; PngImageFile.getexif would
        # decode the whole image to look for an eXIf chunk after the pixel data.
        value = Image.Image.getexif(im).get(_ORIENTATION)
    except Exception:  # Corrupt metadata is ignored, as browsers do.
        return 1
    return value if isinstance(value, int) and value in _TO_STORED else 1


def _upright_size(im: Image.Image, orientation: int, max_pixels: int) -> tuple[int, int]:
    width, height = im.size
    _check_pixels(width, height, max_pixels)
    return (height, width) if _TO_STORED[orientation][0] else (width, height)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise _too_large(
            _(
                "The image is %(width)dx%(height)d pixels (%(pixels)s); the largest accepted is "
                "%(max)s pixels."
            ),
            max_pixels,
            width=width,
            height=height,
            pixels=f"{width * height:,}",
        )
