"""Reading an upload's header in the request with a fixed bound on the work.

Pillow's header parsers loop in Python over a format's chunks, markers and
blocks, one read or more each: a 40 MB PNG of empty chunks before its pixels,
or a JPEG of empty comments, took 9-12 s to open; a 40 MB text chunk 0.26 s.
``HeaderReader`` is the file they are given: it refuses a header that takes
more than ``MAX_HEADER_READS`` reads or ``MAX_HEADER_BYTES`` bytes.

Pillow's WebP plugin reads the whole file and hands it to libwebp (two copies
and a parse, 0.11 s for 40 MB), so a WebP's header is read here instead: its
canvas size is in its first 30 bytes. No Pillow import: bytes only.
"""

from __future__ import annotations

import struct
from typing import IO

from django.utils.translation import gettext_lazy as _

from .exceptions import InvalidImage

__all__ = ["MAX_HEADER_BYTES", "MAX_HEADER_READS", "WEBP_HEADER", "HeaderReader", "webp_header"]

# Ordinary files take 6-40 reads and a few KB; a JPEG with the most ICC segments
# (255) about 800 reads and 16 MB. 4096 reads take a few ms. Camera EXIF is at
# most 64 KiB and print CMYK profiles 0.5-2 MB; 4 MiB takes about 8 ms to parse.
MAX_HEADER_READS = 4096
MAX_HEADER_BYTES = 4 * 1024 * 1024
WEBP_HEADER = 30  # RIFF header, first chunk's header, and its dimensions

TOO_LONG = _(
    "The image's header (the metadata before its pixels) is too long to be checked. "
    "Save the image again without metadata."
)

_VP8X_ALPHA = 0x10


class HeaderReader:
    """``fp`` for Pillow's header parsers, refusing a header too long to parse quickly.

    A read of the whole rest of the file is not counted: Pillow's parsers make
    one only for WebP, which ``webp_header`` reads instead.
    """

    def __init__(self, fp: IO[bytes]) -> None:
        self._fp = fp
        self._reads = 0
        self._bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            self._count(size)  # before reading: one chunk may declare it all
        return self._fp.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        line = self._fp.readline(-1 if size is None else size)
        self._count(len(line))
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def _count(self, nbytes: int) -> None:
        self._reads += 1
        self._bytes += nbytes
        if self._reads > MAX_HEADER_READS or self._bytes > MAX_HEADER_BYTES:
            raise InvalidImage(TOO_LONG)


def is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def webp_header(head: bytes) -> tuple[int, int, bool] | None:
    """Canvas width, height and whether it has alpha, from a WebP's first 30 bytes.

    None if they are not a WebP header (RFC 9649: a simple lossy "VP8 ", a
    simple lossless "VP8L" or an extended "VP8X" file).
    """
    if len(head) < WEBP_HEADER or not is_webp(head):
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", head, 26)
        return width & 0x3FFF, height & 0x3FFF, False
    if chunk == b"VP8L" and head[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", head, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height, bool(head[20] & _VP8X_ALPHA)
    return None
