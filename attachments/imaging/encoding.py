"""Encoding: a style's pixels into the bytes of its format, with our encoder settings."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

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

_WEBP_MODES = {"L": "RGB", "LA": "RGBA"}  # WebP (and Pillow's AVIF) store colour only


def encodes(fmt: str) -> bool:
    """Whether the installed Pillow writes ``fmt`` (AVIF: Pillow 11.2+ built with libavif)."""
    Image.init()
    return fmt in Image.SAVE


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
