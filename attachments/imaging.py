"""Read uploaded images and encode their styles: Pillow is imported here (and by processors).

``probe`` reads just the header of an upload (in the request, so it must stay
fast however large the image). ``render`` decodes the original once, at the
smallest size that still serves the largest style in full quality, and encodes
every style from that one decode (in the worker), running each style's
processors between its resize and its encoding. The styles that keep an
animation read its further frames from the same opened file, one at a time.

Sizes are planned on the image as displayed, i.e. after its EXIF orientation,
and at its original size even when JPEG DCT scaling decodes it smaller, so the
outputs have exactly the sizes ImageMagick would give.
"""

from __future__ import annotations

import io
import itertools
import struct
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast

from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageCms, UnidentifiedImageError

from . import embedded, headers, plan
from .exceptions import ImageTooLarge, InvalidImage
from .geometry import Plan, Point, parse_geometry
from .memory import MemoryBudget
from .styles import Style, StyleError

__all__ = [
    "DEFAULT_FORMATS",
    "ImageInfo",
    "Rendered",
    "Rendition",
    "Shrink",
    "encodes",
    "probe",
    "render",
    "upright",
]

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
# Each style's resize() box-reduces again only down to this many times its own size:
# at 3 instead of 2 the two styles of those photos came 1.6 dB closer to a full-size
# LANCZOS on average (worst style 45.5 dB instead of 42.4), at the same speed.
_RESIZE_GAP = 3.0
# Encoder effort, measured with Pillow 13 (zlib-ng, libwebp 1.6) on a 720x477 photo, a
# 1310x1191 RGBA screenshot and a 900x277 RGBA picture, best of 9 runs:
# PNG level 6 took 1.2-2.6x level 4's time for files 0.3-2.8% smaller; level 3 saved
# 23-42% of level 4's time but its files were up to 11% larger. optimize=True took
# 6x level 4's time for 1.3% less.
_PNG_COMPRESS_LEVEL = 4
# WebP method 3 and 4 cost the same on the photos; on the screenshot 4 took 1.7x as
# long (313 vs 184 ms) and was 25% smaller. 4 is also libwebp's default; 6 took 9x.
_WEBP_METHOD = 4
# AVIF speed 0-10 (slowest, smallest first): Pillow's and libavif's default, 6, which
# is libvips' effort 3 (it gives libaom speed 9 - effort). At that equal setting and
# quality 60, benchmarks/processing.py made both styles of the photos 1.9x as fast as
# pyvips per core, in files of the same size (libaom in both): nothing to tune.
_AVIF_SPEED = 6

# Resampling must average colours weighted by alpha, or transparent pixels' colours bleed.
_PREMULTIPLIED = {"LA": "La", "RGBA": "RGBa"}
_STRAIGHT = {premultiplied: mode for mode, premultiplied in _PREMULTIPLIED.items()}
_WEBP_MODES = {"L": "RGB", "LA": "RGBA"}  # WebP (and Pillow's AVIF) store colour only
_SRGB = ImageCms.createProfile("sRGB")
_UNREADABLE = _("The image cannot be read: the file is damaged, incomplete or not an image.")
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})

_ORIENTATION = 0x0112
# Where Pillow's getexif() looks for the orientation; none is read if any is larger
# than this (a camera's EXIF fits in one 64 KiB JPEG segment; hex doubles it).
_ORIENTATION_SOURCES = ("exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp")
_METADATA_BYTES = 128 * 1024
_UNLIMITED = MemoryBudget(None)

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


# The decode, upright and in sRGB, fitted within a square of the given side.
Shrink = Callable[[int], Image.Image]


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


@dataclass(frozen=True)
class Rendition(_Typed):
    """One encoded style of an image."""

    style: str
    data: bytes
    format: str
    width: int
    height: int
    fingerprint: str  # of the style's declaration it was made from (see plan.fingerprint)


class Rendered(dict[str, Rendition]):
    """What ``render`` made, by ``plan.Output.key``, with the styles that failed and why.

    A style fails as a whole: one of a responsive style's files failing fails it.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size  # the original's, upright
        self.errors: dict[str, str] = {}


@dataclass(frozen=True)
class _Source:
    """The one decode shared by every style, and how it relates to the original."""

    image: Image.Image  # "L", "La", "RGB" or "RGBa": alpha premultiplied for resampling
    orientation: int
    size: tuple[int, int]  # original, upright
    scale: float  # original pixels per decoded pixel
    to_srgb: ImageCms.ImageCmsTransform | None  # from the original's colour profile


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Return ``image`` (stored pixels) as an EXIF ``orientation`` displays it."""
    return image.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else image


def encodes(fmt: str) -> bool:
    """Whether the installed Pillow writes ``fmt`` (AVIF: Pillow 11.2+ built with libavif)."""
    Image.init()
    return fmt in Image.SAVE


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


def render(
    fp: IO[bytes],
    styles: Sequence[Style],
    *,
    max_pixels: int,
    jpeg_quality: int = 85,
    webp_quality: int = 80,
    avif_quality: int = 60,
    max_frames: int = 500,
    budget: MemoryBudget = _UNLIMITED,
    decoded: Callable[[Shrink], None] | None = None,
    focus: Point | None = None,
) -> Rendered:
    """Decode ``fp`` once and execute the rendition plan of ``styles`` on it.

    Returns every style's encoded file by style name; a style the encoder
    refuses (an option its format does not take) is left out and its error
    kept in ``Rendered.errors``, the others are made all the same.

    Raises ``InvalidImage`` for anything that is not a decodable image within
    ``max_pixels``. Errors reading ``fp`` itself (an ``OSError`` with an errno,
    a timeout, a storage backend's own exceptions) are left to propagate so the
    caller can retry them. Any format Pillow reads is accepted except EPS: the
    format was vetted by ``probe`` at upload.

    The pixels are held within ``budget``: once the header tells how much
    memory they will take, the decode waits until that fits.

    A style declared ``animated`` keeps every frame of an animated GIF or
    WebP, with their durations and loop count, within ``max_frames`` frames
    and ``max_pixels`` pixels across them; other styles get the first frame.

    ``decoded`` is called once the original is decoded, before any style is
    made, with a ``Shrink``: a way to have that decode, upright and in sRGB,
    fitted within a small square (the worker's preview, published first).

    ``focus``, the record's focal point, is kept in frame by the crop styles
    that follow it (``plan.follows_focus``).
    """
    qualities = {"JPEG": jpeg_quality, "WEBP": webp_quality, "AVIF": avif_quality}
    try:
        header = _open(fp, styles, max_pixels, qualities, focus)
        rendered = Rendered(header.size)
        with budget.hold(header.footprint):
            source = _decode(header)
            if decoded is not None:
                decoded(lambda side: _resample(source, _fit(source.size, side)))
            animated = [o for o in header.outputs.values() if o.animated and header.animated]
            still = [o for o in header.outputs.values() if o not in animated]
            # A responsive style's formats of one width share one resize.
            for _, group in itertools.groupby(still, key=lambda o: (o.style, o.width)):
                outputs = list(group)
                try:
                    image = _process(_resample(source, outputs[0].geometry), outputs[0])
                except _ProcessorFailed as exc:
                    rendered.errors[outputs[0].style] = str(exc)
                    continue
                for output in outputs:
                    _store(rendered, output, [image])
            if animated:
                _render_animated(header, source, animated, rendered, max_pixels, max_frames)
    finally:
        fp.seek(0)
    return rendered


def _fit(size: tuple[int, int], side: int) -> Plan:
    """The plan of an image of ``size`` fitted within ``side`` x ``side``, never enlarged."""
    return parse_geometry(f"{side}x{side}>").plan(*size)


def _store(
    rendered: Rendered,
    output: plan.Output,
    frames: list[Image.Image],
    durations: Sequence[int] = (),
    loop: int | None = None,
) -> None:
    """Encode one style (one image, or an animation's frames) into ``rendered``."""
    try:
        data = _encode(frames, output.format, output.quality, output.options, durations, loop)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the machine, not the option: retryable
        rendered.errors[output.style] = _refused(output, exc)
        return
    rendered[output.key] = Rendition(
        output.style, data, output.format, *frames[0].size, output.fingerprint
    )


def _render_animated(
    header: _Header,
    first: _Source,
    outputs: list[plan.Output],
    rendered: Rendered,
    max_pixels: int,
    max_frames: int,
) -> None:
    """Make the animated styles of an animated original, one frame at a time.

    Each frame is decoded once for all of them and let go once resized, so
    what is held is the styles' frames, not the original's. A limit exceeded
    fails these styles alone: the first-frame ones are made already.
    """
    made: dict[str, list[Image.Image]] = {output.style: [] for output in outputs}
    durations: list[int] = []
    try:
        for frame, duration in _frames(header, first, max_pixels, max_frames):
            durations.append(duration)
            for output in outputs:
                if output.style in made:
                    try:
                        image = _process(_resample(frame, output.geometry), output)
                    except _ProcessorFailed as exc:
                        rendered.errors[output.style] = str(exc)
                        del made[output.style]
                        continue
                    made[output.style].append(image)
    except InvalidImage as exc:
        for output in outputs:
            rendered.errors.setdefault(output.style, f"Style {output.style!r}: {exc}")
        return
    for output in outputs:
        if output.style in made:
            _store(rendered, output, made[output.style], durations, header.loop)


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


class _ProcessorFailed(Exception):
    """A style's processor could not be imported, raised, or returned no image."""


_ENCODABLE = frozenset({"L", "LA", "RGB", "RGBA"})


def _process(image: Image.Image, output: plan.Output) -> Image.Image:
    """Run the style's processors on its resized, upright, sRGB ``image``, in order.

    Each gets the image in the mode its ``mode`` attribute names, if it has one.
    Whatever it raises fails just this style, for good: it is the processor's
    code, not the image or the machine, so a retry would fail the same way.
    """
    for processor in output.processors:
        failed = f"Style {output.style!r}: processor {processor.name!r}"
        try:
            function = processor.resolve()
            mode = getattr(function, "mode", None)
            if mode and image.mode != mode:
                image = image.convert(mode)
            result = function(image)
        except StyleError as exc:
            raise _ProcessorFailed(f"Style {output.style!r}: {exc}") from exc
        except Exception as exc:
            raise _ProcessorFailed(f"{failed} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, Image.Image):
            raise _ProcessorFailed(f"{failed} returned {type(result).__name__}, not a PIL image.")
        image = result
    if output.processors:
        image.info = {}  # nothing a processor attached (a profile, EXIF) may leak out
        if image.mode not in _ENCODABLE:
            image = _normalise(image)
    return image


def _refused(output: plan.Output, exc: Exception) -> str:
    options = ", ".join(f"{key}={value!r}" for key, value in output.options)
    return (
        f"Style {output.style!r} could not be encoded as {output.format}"
        f"{f' with {options}' if options else ''}: {exc or type(exc).__name__}"
    )


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


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            converted = ImageCms.profileToProfile(im, io.BytesIO(icc), _SRGB, outputMode="RGB")
            assert converted is not None  # None only when converting in place
            return converted
        except ImageCms.PyCMSError:
            pass  # A broken or non-CMYK profile: fall back to the plain formula.
    # (255 - C) * (255 - K) / 255 per channel; Pillow has already undone Adobe's inversion.
    return im.convert("RGB")


def _srgb_transform(icc: bytes | None, *, grey: bool) -> ImageCms.ImageCmsTransform | None:
    """The transform from the original's profile to sRGB; None where none is needed.

    Styles carry no profile, so browsers show them as sRGB: pixels in another
    space must be converted. An sRGB profile (by its description) needs nothing,
    and neither does one that cannot be used (unreadable, or for the other kind of
    samples): the image is then taken as sRGB, as a browser does without a profile.
    """
    if not icc:
        return None
    try:
        profile = ImageCms.getOpenProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space != ("GRAY" if grey else "RGB") or _is_srgb(profile):
            return None
        return ImageCms.buildTransform(profile, _SRGB, "L" if grey else "RGB", "RGB")
    except ImageCms.PyCMSError:
        return None


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    # "sRGB IEC61966-2.1", "sRGB built-in", "sRGB v4 ICC preference", ... but not
    # the linear variants some tools write.
    description = (profile.profile.profile_description or "").lower()  # None if untitled
    return description.startswith("srgb") and "linear" not in description


def _normalise(im: Image.Image) -> Image.Image:
    """Convert to "L", "LA", "RGB" or "RGBA": the modes LANCZOS resamples well."""
    if im.mode in _SIXTEEN_BIT:
        # Scale 0-65535 to 0-255: convert("L") alone clips, turning most of it white.
        return im.point(lambda v: v / 257).convert("L")
    grey = im.mode in ("1", "L", "LA", "La")
    alpha = im.has_transparency_data  # an alpha band, or a transparent palette entry/colour
    mode = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
    return im if im.mode == mode else im.convert(mode)


def _resample(source: _Source, geometry: Plan) -> Image.Image:
    """Crop and scale the shared decode to ``geometry`` in one resize, then turn it upright."""
    width, height = source.size
    resize_w, resize_h = geometry.resize
    left, top, right, bottom = geometry.crop or (0, 0, resize_w, resize_h)
    # The crop box in original upright pixels (multiplying first keeps edges exact) ...
    box = [left * width / resize_w, top * height / resize_h]
    box += [right * width / resize_w, bottom * height / resize_h]
    # ... in stored pixels ...
    swap, mirror_x, mirror_y = _TO_STORED[source.orientation]
    size = geometry.size
    if swap:
        box, size, width, height = [box[1], box[0], box[3], box[2]], size[::-1], height, width
    if mirror_x:
        box[0], box[2] = width - box[2], width - box[0]
    if mirror_y:
        box[1], box[3] = height - box[3], height - box[1]
    # ... and in decoded pixels, never past the edge through rounding.
    limits = source.image.size * 2  # (width, height, width, height)
    box = [min(value / source.scale, limit) for value, limit in zip(box, limits, strict=True)]
    image = source.image.resize(
        size,
        Image.Resampling.LANCZOS,
        box=(box[0], box[1], box[2], box[3]),
        reducing_gap=_RESIZE_GAP,
    )
    image = upright(image, source.orientation)
    if image.mode in _STRAIGHT:
        image = image.convert(_STRAIGHT[image.mode])
    # Resized copies inherit info; no EXIF, XMP, comments or profile may leak out.
    # (Not cleared on the decode: an animation's frames are read from it after.)
    image.info = {}
    return _apply(source.to_srgb, image) if source.to_srgb else image


def _apply(transform: ImageCms.ImageCmsTransform, image: Image.Image) -> Image.Image:
    """Convert a style to sRGB: after resampling, where it has the fewest pixels."""
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert(image.mode[:-1]) if alpha is not None else image
    converted = transform.apply(colour)
    if image.mode.startswith("L"):
        converted = converted.convert("L")  # neutral greys come out with R = G = B
    if alpha is not None:
        converted.putalpha(alpha)
    converted.info = {}  # apply() labels its output with the sRGB profile
    return converted


def _encode(
    frames: Sequence[Image.Image],
    fmt: str,
    quality: int | None,
    options: Sequence[tuple[str, Any]] = (),
    durations: Sequence[int] = (),
    loop: int | None = None,
) -> bytes:
    """Encode one image, or with ``durations`` (ms, one per frame) an animation."""
    prepared = [_prepare(frame, fmt) for frame in frames]
    params: dict[str, Any] = {}
    if fmt == "JPEG":
        # optimize=True would change nothing: libjpeg always optimises progressive scans.
        params = {"quality": quality, "progressive": True}
    elif fmt == "PNG":
        params = {"compress_level": _PNG_COMPRESS_LEVEL}
    elif fmt == "WEBP":
        params = {"quality": quality, "method": _WEBP_METHOD}
    elif fmt == "AVIF":
        params = {"quality": quality, "speed": _AVIF_SPEED}
    if durations:
        params.update(save_all=True, append_images=prepared[1:], duration=list(durations))
        if fmt == "GIF" and frames[0].mode in ("LA", "RGBA"):
            # Frames are whole pictures: each must clear the last, or what it
            # leaves transparent would show the previous frame through.
            params["disposal"] = 2
        if loop is not None:
            params["loop"] = loop
        elif fmt == "WEBP":
            params["loop"] = 1  # a GIF without a loop count plays once; WebP's default is forever
    params.update(options)  # the style's own say over our defaults
    buffer = io.BytesIO()
    prepared[0].save(buffer, fmt, **params)
    return buffer.getvalue()


def _prepare(image: Image.Image, fmt: str) -> Image.Image:
    """Convert ``image`` to what ``fmt`` stores."""
    if fmt == "JPEG":
        return _flatten(image)
    if fmt in ("WEBP", "AVIF"):
        return image.convert(_WEBP_MODES.get(image.mode, image.mode))
    if fmt == "GIF":
        return _to_palette(image)
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite onto white."""
    if image.mode not in ("LA", "RGBA"):
        return image
    flat = Image.new(image.mode[:-1], image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    return flat


def _to_palette(image: Image.Image) -> Image.Image:
    """GIF: at most 256 colours, one of which may be fully transparent."""
    if image.mode == "L":
        return image  # Pillow writes it with a grey palette.
    rgb = image.convert("RGB")
    if image.mode not in ("LA", "RGBA"):
        return rgb.quantize(256)
    paletted = rgb.quantize(255)
    # GIF transparency is all or nothing: pixels less than half opaque become transparent.
    paletted.paste(255, mask=image.getchannel("A").point(lambda a: 255 if a < 128 else 0))
    paletted.info["transparency"] = 255
    return paletted
