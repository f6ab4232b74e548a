"""Rendering: the plan of every style executed on the one decode.

Each style is resampled from the shared decode in one resize, turned upright,
converted to sRGB, run through its processors and encoded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from PIL import Image

from .. import plan
from ..exceptions import InvalidImage
from ..geometry import Plan, Point, parse_geometry
from ..memory import MemoryBudget
from ..styles import Style, StyleError
from .colour import _apply, _normalise
from .decoding import _PREMULTIPLIED, _decode, _frames, _Header, _open, _Source
from .encoding import _encode
from .probing import _TO_STORED, _Typed, upright

# Each style's resize() box-reduces again only down to this many times its own size:
# at 3 instead of 2 the two styles of those photos came 1.6 dB closer to a full-size
# LANCZOS on average (worst style 45.5 dB instead of 42.4), at the same speed.
_RESIZE_GAP = 3.0

# Back from the premultiplied modes the decode is resampled in.
_STRAIGHT = {premultiplied: mode for mode, premultiplied in _PREMULTIPLIED.items()}

_UNLIMITED = MemoryBudget(None)

# The decode, upright and in sRGB, fitted within a square of the given side.
Shrink = Callable[[int], Image.Image]


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
