"""A corpus of hostile and odd uploads, generated in code.

Each case says what the app must do with it: refuse it at upload with a message
the user sees, or accept it and end *ready*, or accept it (its header is fine)
and end with a *failed* job whose error a person can read.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tests import images

REJECTED, READY, FAILED = "rejected", "ready", "failed"


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    content: Callable[[], bytes]
    outcome: str
    message: str = ""  # part of the form error, or of the failed job's last_error
    content_type: str = "image/jpeg"


def _gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose screen and only frame declare ``width`` x ``height``: a small bomb."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # 2-colour global table
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    pixels = b"\x02\x02\x44\x01\x00"  # a valid LZW stream of a few pixels
    return b"GIF89a" + screen + b"\x00\x00\x00\xff\xff\xff" + frame + pixels + b"\x3b"


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header is patched to claim ``width`` x ``height``."""
    data = bytearray(images.jpeg((16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _with_exif(orientation: int | None = None, padding: int = 0) -> bytes:
    im = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if padding:
        exif[0x010E] = "x" * padding  # ImageDescription, bloating the EXIF block
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _polyglot_gif() -> bytes:
    """A valid GIF that also carries an HTML/JS payload in a comment block."""
    buffer = io.BytesIO()
    Image.new("P", (32, 32), 1).save(
        buffer, "GIF", comment=b"<html><script>alert(document.cookie)</script></html>"
    )
    return buffer.getvalue()


def _html_with_image() -> bytes:
    return b"<!doctype html><html><body><script>alert(1)</script>" + images.png((8, 8))


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

CASES = [
    Case("zero-bytes", "empty.jpg", lambda: b"", REJECTED, "empty"),
    Case(
        "text-named-jpg",
        "notes.jpg",
        lambda: b"just some text\n" * 20,
        REJECTED,
        "not a valid image",
    ),
    Case("pdf-named-jpg", "invoice.jpg", lambda: PDF, REJECTED, "not a valid image"),
    Case("svg", "logo.svg", lambda: SVG, REJECTED, "not a valid image", "image/svg+xml"),
    Case("html-with-image-inside", "page.png", _html_with_image, REJECTED, "not a valid image"),
    Case("png-bomb", "bomb.png", lambda: images.png_claiming((50_000, 50_000)), REJECTED, "pixels"),
    Case("gif-bomb", "bomb.gif", lambda: _gif_claiming(50_000, 50_000), REJECTED, "pixels"),
    Case("jpeg-bomb", "bomb.jpg", lambda: _jpeg_claiming(60_000, 60_000), REJECTED, "pixels"),
    Case(
        "truncated-jpeg",
        "cut.jpg",
        lambda: images.truncated(images.jpeg((320, 240)), keep=0.3),
        FAILED,
        "InvalidImage",
    ),
    Case(
        "truncated-png",
        "cut.png",
        lambda: images.truncated(images.png((320, 240), mode="RGBA"), keep=0.5),
        FAILED,
        "InvalidImage",
    ),
    Case(
        "corrupt-jpeg-data",
        "rot.jpg",
        lambda: images.corrupted(images.jpeg((320, 240)), at=0.5, length=400),
        FAILED,
        "damaged",
    ),
    Case("png-named-jpg", "photo.jpg", lambda: images.png((64, 48)), READY, "", "image/jpeg"),
    Case("jpeg-named-txt", "photo.txt", lambda: images.jpeg((64, 48)), READY, "", "text/plain"),
    Case("polyglot-gif", "cat.gif", _polyglot_gif, READY, "", "image/gif"),
    Case(
        "animated-gif-3000-frames",
        "long.gif",
        lambda: images.gif((8, 8), frames=3000),
        READY,
        "",
        "image/gif",
    ),
    Case("cmyk-jpeg", "cmyk.jpg", lambda: images.jpeg((64, 48), cmyk=True), READY),
    Case("16-bit-png", "deep.png", lambda: images.png((64, 48), mode="I;16"), READY),
    Case("exif-orientation-9", "o9.jpg", lambda: _with_exif(orientation=9), READY),
    Case("exif-orientation-0", "o0.jpg", lambda: _with_exif(orientation=0), READY),
    Case("huge-exif-block", "fat.jpg", lambda: _with_exif(padding=60_000), READY),
    Case("path-in-name", "../../etc/passwd.jpg", lambda: images.jpeg((20, 20)), READY),
    Case("backslashes-in-name", "C:\\temp\\..\\x.jpg", lambda: images.jpeg((20, 20)), READY),
    Case("nul-in-name", "a\x00b.php.jpg", lambda: images.jpeg((20, 20)), READY),
    Case("very-long-name", "n" * 1000 + ".jpg", lambda: images.jpeg((20, 20)), READY),
    Case("non-utf8-name", "caf\udce9.jpg", lambda: images.jpeg((20, 20)), READY),
    Case("rtl-override-name", "\u202egpj.exe.jpg", lambda: images.jpeg((20, 20)), READY),
]
