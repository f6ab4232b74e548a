"""A corpus of hostile and odd uploads, generated in code.

Each case says what the app must do with it: refuse it at upload with a message
the user sees, or accept it and end *ready*, or accept it (its header is fine)
and end with a *failed* job whose error a person can read.

``heavy(size)`` gives the cases whose cost could grow with the file (frames,
chunks, metadata, colour profiles) at about ``size`` bytes each, for
``benchmarks/upload.py``; the corpus has them at a size tests can afford.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from attachments.headers import MAX_HEADER_BYTES
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


def gif_with_frames(frames: int) -> bytes:
    """A 2x2 GIF of ``frames`` frames: Pillow's second frame, repeated (saving takes minutes)."""
    two = images.gif((2, 2), frames=2)
    second = two[two.index(b"\x21\xf9", two.index(b"\x21\xf9") + 1) : -1]
    return two[:-1] + second * (frames - 2) + b"\x3b"


def png_with_chunks(count: int, kind: bytes = b"abCd", data: bytes = b"") -> bytes:
    """An 8x8 PNG with ``count`` ancillary chunks between its header and its pixels."""
    png = images.png((8, 8))
    after_header = len(images.PNG_SIGNATURE) + 25
    return png[:after_header] + images.png_chunk(kind, data) * count + png[after_header:]


def jpeg_with_comments(count: int) -> bytes:
    """An 8x8 JPEG with ``count`` empty comment segments before its frame header."""
    jpeg = images.jpeg((8, 8))
    return jpeg[:2] + b"\xff\xfe\x00\x02" * count + jpeg[2:]


def png_with_text(size: int) -> bytes:
    """An 8x8 PNG with one uncompressed text chunk of ``size`` bytes."""
    return png_with_chunks(1, b"tEXt", b"Comment\0" + b"x" * size)


def png_with_xmp(size: int) -> bytes:
    """An 8x8 PNG with an XMP packet of ``size`` bytes (an iTXt chunk, as Adobe writes it)."""
    return png_with_chunks(1, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + b"x" * size)


def png_with_exif_entries(count: int) -> bytes:
    """An 8x8 PNG whose EXIF block has ``count`` entries (at most 65,535) before orientation 6."""
    entry = struct.pack("<HHI4s", 0x010E, 2, 4, b"abc\0")  # ImageDescription, in place
    orientation = struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    ifd = struct.pack("<H", count + 1) + entry * count + orientation + b"\0\0\0\0"
    return png_with_chunks(1, b"eXIf", b"II*\0" + struct.pack("<I", 8) + ifd)


def with_profile(fmt: str, size: int) -> bytes:
    """A 100x67 image in ``fmt`` carrying an sRGB profile padded with a script to ``size`` bytes."""
    return images.encode(images.pattern((100, 67)), fmt, icc_profile=images.padded_profile(size))


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


def padded(png: bytes, size: int) -> bytes:
    """``png`` grown to ``size`` bytes by a private chunk after its pixels, which no probe reads.

    So that a hostile header is timed against a plain upload of as many bytes.
    """
    end = len(png) - 12  # the IEND chunk
    return png[:end] + images.png_chunk(b"prVt", bytes(max(size - len(png) - 12, 0))) + png[end:]


def heavy(size: int) -> list[Case]:
    """Uploads of about ``size`` bytes whose cost could grow with their size, if let."""
    jpeg_profile = min(size, 255 * 65_519)  # the most a JPEG's APP2 segments hold
    png_profile = 1_000_000  # Pillow refuses an iCCP chunk inflating to more than 1 MiB

    def header(nbytes: int) -> str:
        """A header of ``nbytes`` is parsed, or refused as too long to parse quickly."""
        return READY if nbytes <= MAX_HEADER_BYTES - 1000 else REJECTED

    return [
        Case("gif-many-frames", "long.gif", lambda: gif_with_frames(size // 40), READY),
        Case("png-many-chunks", "c.png", lambda: png_with_chunks(size // 12), REJECTED, "header"),
        Case(
            "jpeg-many-comments", "c.jpg", lambda: jpeg_with_comments(size // 4), REJECTED, "header"
        ),
        Case("png-huge-text", "t.png", lambda: png_with_text(size), header(size)),
        Case("png-huge-xmp", "x.png", lambda: png_with_xmp(size), header(size)),
        Case(  # the most header work accepted
            "png-text-at-the-header-limit",
            "l.png",
            lambda: padded(png_with_text(MAX_HEADER_BYTES - 1000), size),
            READY,
        ),
        Case(
            "png-65535-exif-entries",
            "e.png",
            lambda: padded(png_with_exif_entries(65_534), size),
            READY,
        ),
        Case("webp-huge-profile", "p.webp", lambda: with_profile("WEBP", size), READY),
        Case(
            "jpeg-huge-profile",
            "p.jpg",
            lambda: with_profile("JPEG", jpeg_profile),
            header(jpeg_profile),
        ),
        Case(
            "png-huge-profile",
            "p.png",
            lambda: padded(with_profile("PNG", png_profile), size),
            READY,
        ),
    ]


CASES += heavy(2_000_000)
