"""attachments.headers: the bounded reader Pillow's parsers get, and WebP's header."""

from __future__ import annotations

import io

import pytest

from attachments import headers
from attachments.exceptions import InvalidImage
from tests import images


def test_the_reader_refuses_a_header_of_too_many_reads():
    reader = headers.HeaderReader(io.BytesIO(b"x" * 10_000))
    for _ in range(headers.MAX_HEADER_READS):
        reader.read(1)
    with pytest.raises(InvalidImage, match="too long to be checked"):
        reader.read(1)


def test_the_reader_refuses_a_read_past_its_bytes_before_making_it():
    fp = io.BytesIO(b"x" * 100)
    reader = headers.HeaderReader(fp)
    assert reader.read(10) == b"x" * 10
    with pytest.raises(InvalidImage):
        reader.read(headers.MAX_HEADER_BYTES)
    assert fp.tell() == 10


def test_the_reader_lets_a_whole_file_read_through_and_seeks():
    reader = headers.HeaderReader(io.BytesIO(b"x" * 100))
    reader.seek(90)
    assert (reader.read(), reader.tell()) == (b"x" * 10, 100)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        images.webp()[:29],
        b"RIFF\0\0\0\0WEBPVP9 " + b"\0" * 20,
        images.png() + b"\0" * 30,
    ],
    ids=["empty", "cut", "unknown-chunk", "png"],
)
def test_webp_header_is_none_for_anything_else(head):
    assert headers.webp_header(head) is None
