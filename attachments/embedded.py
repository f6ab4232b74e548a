"""The small JPEG a camera or editor embeds in its file, found in metadata already read.

An EXIF block keeps it in its second image file directory (IFD1: the offset
and length of a JPEG stream, tags 0x0201 and 0x0202); a JFIF file may carry one
in a ``JFXX`` APP0 extension (code 0x10: a JPEG stream). Cameras write about
160x120 pixels, a few KB. Both live in the header the request has already read
through ``headers.HeaderReader``, so finding them costs a few slices of bytes
already in memory: no read, no decode.

Anything malformed or oversized is not a thumbnail: never an error, the
worker makes the preview instead. Bytes only: no Pillow, no Django.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["MAX_THUMBNAIL_BYTES", "thumbnail"]

# A camera's thumbnail is 4-20 KB; EXIF as a whole must fit one 64 KiB JPEG segment.
MAX_THUMBNAIL_BYTES = 64 * 1024
# Entries in one directory: cameras write a few dozen. More is a crafted file.
_MAX_ENTRIES = 512
_JPEG_OFFSET, _JPEG_LENGTH = 0x0201, 0x0202
_SOI = b"\xff\xd8"
_JFXX_JPEG = 0x10


def thumbnail(exif: bytes | None, app_segments: Iterable[tuple[str, bytes]] = ()) -> bytes:
    """The embedded JPEG thumbnail from an EXIF block or a JFXX segment; b"" if none.

    ``exif`` is the block as Pillow keeps it (``info["exif"]``, with or without
    the ``Exif\\0\\0`` prefix of a JPEG's APP1); ``app_segments`` a JPEG's
    ``applist``.
    """
    found = _from_exif(exif) if exif else b""
    if not found:
        found = next(
            filter(None, (_from_jfxx(data) for app, data in app_segments if app == "APP0")), b""
        )
    return found


def _from_exif(exif: bytes) -> bytes:
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    if tiff[:4] == b"II*\0":
        order = "<"
    elif tiff[:4] == b"MM\0*":
        order = ">"
    else:
        return b""
    try:
        (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
        ifd1 = _next_directory(tiff, order, ifd0)
        if not ifd1:
            return b""
        entries = _directory(tiff, order, ifd1)
    except struct.error:  # an offset past the end
        return b""
    offset, length = entries.get(_JPEG_OFFSET), entries.get(_JPEG_LENGTH)
    if offset is None or length is None or not 0 < length <= MAX_THUMBNAIL_BYTES:
        return b""
    data = tiff[offset : offset + length]
    return data if len(data) == length and data.startswith(_SOI) else b""


def _count(tiff: bytes, order: str, offset: int) -> int:
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    if count > _MAX_ENTRIES:
        raise struct.error("too many entries")
    return int(count)


def _next_directory(tiff: bytes, order: str, offset: int) -> int:
    """The offset of the directory after the one at ``offset`` (0: none)."""
    count = _count(tiff, order, offset)
    (after,) = struct.unpack_from(order + "I", tiff, offset + 2 + 12 * count)
    # A directory pointing back at or before itself would be a loop.
    return int(after) if after > offset else 0


def _directory(tiff: bytes, order: str, offset: int) -> dict[int, int]:
    """The directory's entries holding one SHORT or LONG, by tag."""
    entries = {}
    for index in range(_count(tiff, order, offset)):
        tag, kind, count = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * index)
        if count == 1 and kind in (3, 4):  # SHORT, LONG: the value is in the entry
            (value,) = struct.unpack_from(
                order + ("H" if kind == 3 else "I"), tiff, offset + 10 + 12 * index
            )
            entries[tag] = int(value)
    return entries


def _from_jfxx(segment: bytes) -> bytes:
    # "JFXX\0", the extension code, then (for 0x10) a whole JPEG stream.
    if segment[:5] != b"JFXX\0" or len(segment) < 8 or segment[5] != _JFXX_JPEG:
        return b""
    data = segment[6:]
    return data if len(data) <= MAX_THUMBNAIL_BYTES and data.startswith(_SOI) else b""
