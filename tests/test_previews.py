"""The preview: a tiny WebP data URI, made in the request from an embedded thumbnail."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageFile

from attachments import imaging, plan, previews
from demo_site.models import Item
from tests import images

CORNERS = (images.RED, images.GREEN, images.BLUE, images.YELLOW)


def decode(preview: str) -> Image.Image:
    head, _, data = preview.partition(",")
    assert head == "data:image/webp;base64"
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    assert im.format == "WEBP"
    return im


def corners(im: Image.Image) -> list[tuple[int, ...]]:
    rgb = im.convert("RGB")
    w, h = rgb.size
    return [rgb.getpixel(xy) for xy in ((1, 1), (w - 2, 1), (1, h - 2), (w - 2, h - 2))]  # type: ignore[misc]


def near(actual: list[tuple[int, ...]], expected: tuple[tuple[int, int, int], ...]) -> bool:
    return all(
        max(abs(a - e) for a, e in zip(pixel, colour, strict=True)) <= 40
        for pixel, colour in zip(actual, expected, strict=True)
    )


def probe(data: bytes) -> imaging.ImageInfo:
    return imaging.probe(io.BytesIO(data), max_pixels=50_000_000)


def test_encode_makes_a_small_webp_data_uri_keeping_alpha():
    small = images.pattern((24, 18), alpha=True)
    preview = previews.encode(small)
    assert len(preview) < 400
    im = decode(preview)
    assert (im.size, im.mode) == ((24, 18), "RGBA")
    assert im.getpixel((22, 16))[3] == 0  # the transparent quadrant stays transparent
    assert near(corners(im)[:3], CORNERS[:3])


def test_encode_an_opaque_image_as_rgb():
    assert decode(previews.encode(images.pattern((24, 18)).convert("L"))).mode == "RGB"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_thumbnail_is_turned_upright_as_the_original(orientation):
    info = probe(images.jpeg_with_thumbnail((640, 480), orientation=orientation))
    assert (info.width, info.height, info.orientation) == (640, 480, orientation)
    im = decode(previews.from_thumbnail(info) or "")
    assert im.size == (previews.SIDE, previews.SIDE * 3 // 4)
    assert near(corners(im), CORNERS)


def test_a_letterboxed_thumbnail_is_cropped_to_the_originals_aspect_ratio():
    # A 3:2 photo's thumbnail in a 4:3 frame, with black bars above and below.
    info = probe(images.jpeg_with_thumbnail((600, 400), thumbnail_size=(160, 120)))
    im = decode(previews.from_thumbnail(info) or "")
    assert im.size == (24, 16)
    assert near(corners(im), CORNERS)  # no black band left at the top or bottom


def test_a_thumbnail_of_another_shape_is_not_used():
    # Portrait pixels with a landscape thumbnail: another picture, or rotated wrongly.
    thumbnail = images.encode(images.pattern((160, 120)), "JPEG")
    info = probe(images.jpeg_with_thumbnail((300, 400), thumbnail=thumbnail))
    assert info.thumbnail == thumbnail
    assert previews.from_thumbnail(info) is None


@pytest.mark.parametrize(
    "thumbnail",
    [
        pytest.param(b"\xff\xd8" + b"\x00" * 1000, id="garbage"),
        pytest.param(
            images.truncated(images.encode(images.detail((160, 120)), "JPEG"), 0.3), id="truncated"
        ),
        pytest.param(
            images.encode(Image.new("RGB", (2000, 1000)), "JPEG", quality=1), id="too-many-pixels"
        ),
        pytest.param(images.png((160, 120)), id="not-a-jpeg"),
    ],
)
def test_a_damaged_or_crafted_thumbnail_is_ignored(thumbnail):
    data = images.jpeg_with_thumbnail((640, 480), thumbnail=b"\xff\xd8" + thumbnail[2:])
    info = probe(data)  # never an error for the upload
    assert previews.from_thumbnail(info) is None


def test_no_thumbnail_no_preview():
    assert probe(images.jpeg((640, 480))).thumbnail == b""
    assert previews.from_thumbnail(probe(images.jpeg((640, 480)))) is None
    assert previews.from_thumbnail(probe(images.png((64, 48)))) is None


def test_a_pngs_exif_thumbnail_is_used_too():
    exif = images.exif_with_thumbnail(images.encode(images.pattern((160, 120)), "JPEG"))
    data = images.png((640, 480), exif=b"Exif\0\0" + exif)
    assert near(corners(decode(previews.from_thumbnail(probe(data)) or "")), CORNERS)


@contextmanager
def decoded_sizes() -> Iterator[list[tuple[int, int]]]:
    """Record the size of every image whose pixels Pillow decodes meanwhile."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        if self.tile:  # pixels still to decode, not an image already loaded
            sizes.append(self.size)
        return load(self)

    ImageFile.ImageFile.load = counting  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        ImageFile.ImageFile.load = load  # type: ignore[method-assign]


@pytest.mark.django_db
def test_the_request_makes_the_preview_decoding_only_the_thumbnail():
    data = images.jpeg_with_thumbnail((2400, 1800), orientation=6)
    with decoded_sizes() as sizes:
        item = Item(title="x")
        item.image.save("camera.jpg", ContentFile(data))
    # Only the thumbnail's pixels, at a reduced DCT scale (160x120 stored as 120x160).
    assert sizes == [(60, 80)]
    item.refresh_from_db()
    assert item.image_state == "processing"
    preview = plan.preview(item.image_styles)
    assert near(corners(decode(preview or "")), CORNERS)
    assert plan.made(item.image_styles) == {}  # the preview is not a style


@pytest.mark.django_db
def test_without_a_thumbnail_the_request_decodes_nothing():
    with decoded_sizes() as sizes:
        item = Item(title="x")
        item.image.save("plain.jpg", ContentFile(images.jpeg((2400, 1800))))
    assert sizes == []
    assert plan.preview(item.image_styles) is None
