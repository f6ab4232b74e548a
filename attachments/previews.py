"""The instant preview: a tiny image a page shows, blurred, while the styles are made.

It is a WebP of at most ``SIDE`` pixels a side (about 60-300 bytes), kept on
the record as a ``data:`` URI under ``plan.PREVIEW``: a browser shows it as it
is, with no decoder in Python or JavaScript, and it carries the image's aspect
ratio and transparency. (A ThumbHash is smaller, 25-35 bytes, but would have to
be decoded to pixels on every page, or by a script before anything shows.)

Where the upload embeds a thumbnail (``embedded``), the request makes the
preview from it: a ~160x120 JPEG decoded at reduced scale, well under a
millisecond. Otherwise the worker makes it from the job's one decode, before
any style, and publishes it at once (``processing``).
"""

from __future__ import annotations

import base64
import io
import logging
import math

from PIL import Image

from . import imaging

__all__ = ["SIDE", "encode", "from_thumbnail", "img_style"]

logger = logging.getLogger("attachments")

SIDE = 24
# A thumbnail is cropped to the original's aspect ratio (cameras letterbox 3:2
# photos in a 4:3 one). If that keeps less than this share of it, it shows
# another picture (or another orientation) than the original: not used.
_MIN_KEPT = 0.6
# Camera thumbnails are 160x120 to 640x480; a larger claim is a crafted header.
_MAX_THUMBNAIL_PIXELS = 1024 * 1024
_QUALITY = 50


def encode(image: Image.Image) -> str:
    """Return the ``data:`` URI of ``image`` (already small, upright, in sRGB)."""
    mode = "RGBA" if image.mode in ("LA", "RGBA", "La", "RGBa") else "RGB"
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, "WEBP", quality=_QUALITY)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def from_thumbnail(info: imaging.ImageInfo) -> str | None:
    """The preview from the upload's embedded thumbnail, None if it has no usable one.

    Bounded: the thumbnail is at most ``embedded.MAX_THUMBNAIL_BYTES``, its
    header must claim at most ``_MAX_THUMBNAIL_PIXELS``, and it is decoded at
    the smallest DCT scale that still covers ``SIDE``. Whatever is wrong with
    it, the upload goes on without a preview (the worker makes one).
    """
    if not info.thumbnail or not info.width or not info.height:
        return None
    try:
        with Image.open(io.BytesIO(info.thumbnail), formats=["JPEG"]) as im:
            if im.width * im.height > _MAX_THUMBNAIL_PIXELS:
                return None
            im.draft("RGB", (2 * SIDE, 2 * SIDE))  # libjpeg's DCT scaling: 1/2 to 1/8 size
            image = imaging.upright(im.convert("RGB"), info.orientation)
    except Exception as exc:  # a damaged thumbnail is no reason to refuse the upload
        logger.debug("Embedded thumbnail not used: %s", exc)
        return None
    box = _crop(image.size, (info.width, info.height))
    if box is None:
        return None
    image = image.crop(box)
    image.thumbnail((SIDE, SIDE))
    return encode(image)


def _crop(size: tuple[int, int], original: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The centred box of ``size`` with ``original``'s aspect ratio; None if it keeps too little."""
    width, height = size
    wanted = original[0] / original[1]
    if width / height > wanted:
        kept_w, kept_h = round(height * wanted), height
    else:
        kept_w, kept_h = width, round(width / wanted)
    if not kept_w or not kept_h or kept_w * kept_h < _MIN_KEPT * width * height:
        return None
    left, top = (width - kept_w) // 2, (height - kept_h) // 2
    return left, top, left + kept_w, top + kept_h


def img_style(width: int | None, height: int | None) -> str:
    """The inline CSS that shows a preview blurred, covering the ``<img>``'s box.

    The blur is about half a preview pixel as displayed, so the pixels melt
    into each other; ``clip-path`` keeps it from spilling past the box.
    ``aspect-ratio`` keeps the style's shape where the page scales images
    (``max-width: 100%; height: auto``): there the browser takes the shape of
    the image loaded, the preview's, and the page would jump when the style came.
    """
    displayed = max(width or 0, height or 0) or 200
    radius = min(max(math.ceil(displayed / SIDE / 2), 2), 40)
    css = f"filter: blur({radius}px); clip-path: inset(0); object-fit: cover"
    return f"{css}; aspect-ratio: {width} / {height}" if width and height else css
