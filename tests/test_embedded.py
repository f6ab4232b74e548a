"""Finding a camera's embedded thumbnail in EXIF and JFXX metadata, and ignoring crafted ones."""

from __future__ import annotations

import random
import struct

import pytest

from attachments import embedded
from tests import images

THUMB = images.encode(images.pattern((160, 120)), "JPEG")


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("prefix", [b"Exif\0\0", b""])  # a JPEG's APP1 / a PNG's eXIf
def test_finds_the_ifd1_thumbnail_in_either_byte_order(big_endian, prefix):
    exif = images.exif_with_thumbnail(THUMB, orientation=6, big_endian=big_endian)
    assert embedded.thumbnail(prefix + exif) == THUMB


def test_finds_a_jfxx_thumbnail_when_exif_has_none():
    segments = [("APP0", b"JFIF\0\1\2\0\0\1\0\1\0\0"), ("APP0", b"JFXX\0\x10" + THUMB)]
    assert embedded.thumbnail(None, segments) == THUMB
    exif_without = images.exif_with_thumbnail(b"", orientation=1)
    assert embedded.thumbnail(exif_without, segments) == THUMB


def test_a_jfxx_thumbnail_in_another_coding_is_not_used():
    # 0x11 and 0x13 are palette and RGB pixels, not a JPEG stream.
    assert embedded.thumbnail(None, [("APP0", b"JFXX\0\x13\2\1" + bytes(6))]) == b""


def test_no_ifd1_no_thumbnail():
    exif = images.exif_with_thumbnail(THUMB)
    no_next = exif[:10] + b"\0\0\0\0" + exif[14:]  # IFD0 (no entries) links to no IFD1
    assert embedded.thumbnail(no_next) == b""


def test_a_thumbnail_larger_than_the_bound_is_ignored():
    big = THUMB + bytes(embedded.MAX_THUMBNAIL_BYTES)
    assert embedded.thumbnail(images.exif_with_thumbnail(big)) == b""
    assert embedded.thumbnail(None, [("APP0", b"JFXX\0\x10" + big)]) == b""


def test_a_length_past_the_end_is_ignored():
    exif = images.exif_with_thumbnail(THUMB)
    assert embedded.thumbnail(exif[:-10]) == b""


def test_bytes_that_are_not_a_jpeg_are_ignored():
    assert embedded.thumbnail(images.exif_with_thumbnail(b"GIF89a" + bytes(100))) == b""


def test_a_directory_linking_back_to_itself_is_no_loop():
    exif = bytearray(images.exif_with_thumbnail(THUMB))
    ifd1 = 8 + 2 + 4
    struct.pack_into("<I", exif, ifd1 + 2 + 12 * 3, 8)  # IFD1 -> IFD0 -> IFD1 ...
    struct.pack_into("<I", exif, 8 + 2, 8)  # IFD0 -> itself
    assert embedded.thumbnail(bytes(exif)) == b""


def test_a_directory_claiming_too_many_entries_is_ignored():
    exif = bytearray(images.exif_with_thumbnail(THUMB))
    struct.pack_into("<H", exif, 8, 60000)
    assert embedded.thumbnail(bytes(exif)) == b""


def test_random_damage_never_raises():
    exif = images.exif_with_thumbnail(THUMB, orientation=3)
    rng = random.Random(16)
    for _ in range(2000):
        damaged = bytearray(exif[:200])
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        found = embedded.thumbnail(bytes(damaged[: rng.randint(0, 200)]) + exif[200:])
        assert len(found) <= embedded.MAX_THUMBNAIL_BYTES
