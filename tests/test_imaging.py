"""attachments.imaging on real files encoded and decoded by Pillow (see tests/images.py)."""

from __future__ import annotations

import errno
import io
import os
import threading
import warnings
from typing import Any

import pytest
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, PngImagePlugin

from attachments import headers, imaging
from attachments.exceptions import ImageTooLarge, InvalidImage
from attachments.geometry import parse_geometry
from attachments.memory import MemoryBudget
from attachments.styles import Processor, Style, parse_styles
from tests import hostile, images

WHITE = (255, 255, 255)
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
TRANSPARENT = (0, 0, 0, 0)
GEOMETRIES = [
    "32x32",
    "32x32>",
    "500x500>",
    "20x20<",
    "500x500<",
    "32x32^",
    "32x20!",
    "32x32#",
    "7x50#",
    "x20",
    "20x",
    "50%",
    "50%x25%",
    "500@",
    "500@>",
]


def styles(**specs: Any) -> list[Style]:
    return list(parse_styles(specs).values())


def render(data: bytes, max_pixels: int = 10**8, **specs: Any) -> dict[str, imaging.Rendition]:
    return imaging.render(io.BytesIO(data), styles(**specs), max_pixels=max_pixels)


def probe(data: bytes, **kwargs: Any) -> imaging.ImageInfo:
    kwargs.setdefault("max_pixels", 10**8)
    return imaging.probe(io.BytesIO(data), **kwargs)


def decode(rendition: imaging.Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    assert image.format == rendition.format
    assert image.size == (rendition.width, rendition.height)
    return image


def corners(image: Image.Image) -> list[tuple[int, ...]]:
    """RGBA of the top-left, top-right, bottom-left and bottom-right pixels."""
    rgba = image.convert("RGBA")
    right, bottom = image.width - 1, image.height - 1
    return [rgba.getpixel(xy) for xy in [(0, 0), (right, 0), (0, bottom), (right, bottom)]]


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def upright(colours: list[tuple[int, ...]]) -> bool:
    """The corners show the pattern the right way up (opaque colours)."""
    expected = [images.RED, images.GREEN, images.BLUE, images.YELLOW]
    return all(close(c, (*e, 255)) for c, e in zip(colours, expected, strict=True))


class FailingFile(io.BytesIO):
    """A file whose reads fail after ``limit`` bytes, as a disk or network can."""

    def __init__(self, data: bytes, limit: int, error: OSError) -> None:
        super().__init__(data)
        self.limit, self.error = limit, error

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() + (size if size and size > 0 else len(self.getvalue())) > self.limit:
            raise self.error
        return super().read(size)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return images.jpeg((4000, 3000))


@pytest.fixture(scope="module")
def detail() -> Image.Image:
    return images.detail((643, 481))  # sizes that 2, 3, 4 and 8 do not divide


# probe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt", "mode", "extension", "content_type"),
    [
        (images.jpeg(), "JPEG", "RGB", ".jpg", "image/jpeg"),
        (images.png(mode="RGBA"), "PNG", "RGBA", ".png", "image/png"),
        (images.gif(), "GIF", "P", ".gif", "image/gif"),
        (images.webp(), "WEBP", "RGB", ".webp", "image/webp"),
    ],
)
def test_probe_identifies_each_accepted_format(data, fmt, mode, extension, content_type):
    info = probe(data)
    assert info == imaging.ImageInfo(format=fmt, width=64, height=48, mode=mode)
    assert (info.extension, info.content_type) == (extension, content_type)


def test_probe_reports_the_upright_size():
    info = probe(images.jpeg(exif_orientation=6))  # stored 48x64
    assert (info.width, info.height) == (64, 48)
    assert probe(images.mpo()) == imaging.ImageInfo("JPEG", 64, 48, "RGB")


class CountingFile(io.BytesIO):
    """Counts the reads made of it, and the bytes they asked for."""

    reads = asked = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        self.asked += size if size is not None and size >= 0 else len(self.getvalue()) - self.tell()
        return super().read(size)


def test_probe_never_walks_the_frames():
    # Counting a GIF's frames walks every frame block: 1.9 million took 10-13 s.
    fp = CountingFile(hostile.gif_with_frames(3000))
    assert imaging.probe(fp, max_pixels=10**6).format == "GIF"
    assert fp.reads < 30


@pytest.mark.parametrize(
    "data",
    [
        hostile.png_with_chunks(headers.MAX_HEADER_READS),
        hostile.jpeg_with_comments(headers.MAX_HEADER_READS),
        hostile.png_with_text(headers.MAX_HEADER_BYTES),
    ],
    ids=["png-many-chunks", "jpeg-many-comments", "png-huge-text"],
)
def test_probe_refuses_a_header_too_long_to_parse_quickly(data):
    fp = CountingFile(data)
    with pytest.raises(
        InvalidImage, match=r"header \(the metadata before its pixels\) is too long"
    ):
        imaging.probe(fp, max_pixels=10**6)
    assert fp.reads <= headers.MAX_HEADER_READS + 1
    assert fp.asked <= headers.MAX_HEADER_BYTES + 2 * 2**20  # the refused read is not made


@pytest.mark.parametrize(
    ("data", "mode"),
    [
        (images.encode(images.pattern((63, 47)), "WEBP", quality=80), "RGB"),  # VP8
        (images.webp((63, 47)), "RGB"),  # VP8L
        (images.webp((63, 47), alpha=True), "RGBA"),
        (images.webp((63, 47), frames=2), "RGB"),  # VP8X
        (images.webp((63, 47), alpha=True, frames=2), "RGBA"),
        (hostile.with_profile("WEBP", 5000), "RGB"),
    ],
    ids=["lossy", "lossless", "lossless-alpha", "animated", "animated-alpha", "with-profile"],
)
def test_probe_reads_a_webp_from_its_first_30_bytes(data, mode):
    # Pillow hands the whole file to libwebp: 0.11 s for a 40 MB profile.
    fp = CountingFile(data)
    info = imaging.probe(fp, max_pixels=10**6)
    size = (100, 67) if len(data) > 5000 else (63, 47)
    assert info == imaging.ImageInfo("WEBP", *size, mode)
    assert fp.asked <= headers.WEBP_HEADER
    assert Image.open(io.BytesIO(data)).size == size


def test_probe_refuses_a_webp_it_cannot_read_or_too_large():
    data = bytearray(images.webp((64, 48), frames=2))  # VP8X: canvas size minus one, 24 bits each
    data[24:30] = (16_383).to_bytes(3, "little") * 2
    with pytest.raises(ImageTooLarge, match=r"16384x16384 .* the largest accepted is 1,000,000"):
        probe(bytes(data), max_pixels=10**6)
    data[12:16] = b"VP9 "
    with pytest.raises(InvalidImage, match="not a valid image"):
        probe(bytes(data))
    with pytest.raises(InvalidImage, match=r"not a valid image. Accepted formats: JPEG\.$"):
        probe(images.webp(), formats=["JPEG"])


def test_orientation_metadata_larger_than_a_camera_writes_is_not_parsed():
    # 65,535 EXIF entries take a Python loop each; a camera's EXIF fits in 64 KiB.
    small, huge = hostile.png_with_exif_entries(3), hostile.png_with_exif_entries(65_534)
    assert not upright(corners(decode(render(small, s="8x8")["s"])))  # orientation 6 applied
    assert upright(corners(decode(render(huge, s="8x8")["s"])))


def test_probe_reads_only_the_header_and_rewinds(monkeypatch):
    monkeypatch.setattr(Image, "_getdecoder", lambda *args: pytest.fail("pixels decoded"))
    fp = io.BytesIO(images.png(mode="I;16"))
    fp.seek(10)
    assert imaging.probe(fp, max_pixels=10**6).mode == "I;16"
    assert fp.tell() == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Just some text, not an image.\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        images.png()[:20],
        images.jpeg()[:3],
        images.encode(images.pattern(), "BMP"),  # an image, but not an accepted format
    ],
    ids=["empty", "text", "pdf", "svg", "png-header-cut", "jpeg-header-cut", "bmp"],
)
def test_probe_rejects_what_is_not_an_accepted_image(data):
    with pytest.raises(InvalidImage, match=r"Accepted formats: JPEG, PNG, GIF, WebP\.$"):
        probe(data)


def test_probe_accepts_only_the_given_formats():
    with pytest.raises(InvalidImage, match=r"Accepted formats: JPEG\.$"):
        probe(images.png(), formats=["jpeg", "SVG"])
    with pytest.raises(InvalidImage):
        probe(b"<svg/>", formats=["SVG"])  # never an image here
    assert probe(images.encode(images.pattern(), "BMP"), formats=["BMP"]).format == "BMP"


def test_probe_enforces_the_pixel_limit():
    assert probe(images.png((40, 25)), max_pixels=1000).width == 40
    with pytest.raises(ImageTooLarge, match=r"40x26 pixels \(1,040\); .* 1,000 pixels"):
        probe(images.png((40, 26)), max_pixels=1000)
    # Far past Pillow's own bomb limit too, which fires inside Image.open.
    with pytest.raises(ImageTooLarge) as caught:
        probe(images.png_claiming((50_000, 50_000)), max_pixels=40_000_000)
    assert str(caught.value) == (
        "The image has more than 40,000,000 pixels; the largest accepted is 40,000,000 pixels."
    )


# Pillow warns of an image over its limit (then ours) before we refuse it: a true warning.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("pillow_limit", [None, 1000, 10**12], ids=["off", "lower", "higher"])
def test_the_pixel_limit_is_ours_whatever_pillows(monkeypatch, pillow_limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    data = images.png((64, 48))  # 3,072 pixels: three times a limit of 1000
    assert probe(data, max_pixels=4000).width == 64
    assert render(data, max_pixels=4000, s="32x32")["s"].width == 32
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # lifted only while we opened
    with pytest.raises(
        ImageTooLarge, match=r"^The image is 64x48 pixels \(3,072\); .* 3,000 pixels"
    ):
        probe(data, max_pixels=3000)
    with pytest.raises(ImageTooLarge, match=r"; the largest accepted is 3,000 pixels\.$"):
        render(data, max_pixels=3000, s="32x32")


def test_pillows_limit_stays_lifted_until_the_last_concurrent_open_ends(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    inside = {"first": threading.Event(), "second": threading.Event()}
    release = {"first": threading.Event(), "second": threading.Event()}
    real_open = Image.open

    def open_when_released(fp: Any, formats: Any = None) -> Image.Image:
        name = threading.current_thread().name
        inside[name].set()
        release[name].wait(10)
        return real_open(fp, formats=formats)

    monkeypatch.setattr(Image, "open", open_when_released)
    data = images.png((64, 48))  # 3,072 pixels: Pillow alone refuses above 2,000
    results: dict[str, Any] = {}

    def probe_in(name: str) -> threading.Thread:
        def target() -> None:
            try:
                results[name] = probe(data, max_pixels=4000).width
            except InvalidImage as exc:
                results[name] = exc

        thread = threading.Thread(target=target, name=name)
        thread.start()
        assert inside[name].wait(10)
        return thread

    first, second = probe_in("first"), probe_in("second")
    release["first"].set()
    first.join(10)
    assert Image.MAX_IMAGE_PIXELS == 4000  # the second is still opening
    release["second"].set()
    second.join(10)
    assert results == {"first": 64, "second": 64}
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_the_pixel_limit_speaks_where_warnings_are_errors(monkeypatch):
    # Pillow warns between its limit (lifted to ours) and twice it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLarge, match="the largest accepted is 3,000 pixels"):
            probe(images.png_claiming((100, 50)), max_pixels=3000)


def test_probe_lets_read_errors_through():
    failing = FailingFile(images.png(), 8, OSError(errno.EIO, "Input/output error"))
    with pytest.raises(OSError, match="Input/output") as caught:
        imaging.probe(failing, max_pixels=10**6)
    assert not isinstance(caught.value, InvalidImage)


# render: sizes and orientation ------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_render_applies_exif_orientation(orientation):
    data = images.jpeg((640, 480), exif_orientation=orientation)
    out = render(data, fit="50x50", crop=("30x30#", "png"))
    assert (out["fit"].width, out["fit"].height) == (50, 38)
    assert (out["crop"].width, out["crop"].height) == (30, 30)
    assert upright(corners(decode(out["fit"])))
    assert upright(corners(decode(out["crop"])))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_render_matches_a_full_size_lanczos(detail, orientation, fmt):
    """Draft, reduce and the crop box mapped to stored pixels land where a slow resize
    of the whole upright image does: a box off by a pixel shifts the detail and fails."""
    stored, exif = images.oriented(detail, orientation)
    data = images.encode(stored, fmt, exif=exif, quality=95, compress_level=0)
    upright_image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    # DCT-scaled / reduced, both ways; then crops one pixel off-centre, at full size.
    for geometry in ("97x97", "41x33#", "10x481#", "643x10#"):
        plan = parse_geometry(geometry).plan(643, 481)
        expected = upright_image.resize(plan.resize, Image.Resampling.LANCZOS).crop(plan.crop)
        actual = decode(render(data, s=(geometry, "png"))["s"]).convert("RGB")
        difference = [abs(a - b) for a, b in zip(actual.tobytes(), expected.tobytes(), strict=True)]
        assert sum(difference) / len(difference) < 2.0, geometry


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(
    "data",
    [
        images.jpeg((48, 64), exif_orientation=8),
        images.png((1, 118)),
        images.png((16, 16), mode="RGBA"),
    ],
    ids=["rotated-jpeg", "1x118-strip", "16x16-icon"],
)
def test_render_sizes_equal_the_plan(data, geometry):
    info = probe(data)
    rendition = render(data, s=geometry)["s"]
    size = parse_geometry(geometry).plan(info.width, info.height).size
    assert (rendition.width, rendition.height) == size
    assert decode(rendition).size == size


def test_render_ignores_a_bad_orientation():
    exif = Image.Exif()
    exif[0x0112] = 9
    data = images.encode(images.pattern(), "JPEG", exif=exif.tobytes())
    assert probe(data).width == 64
    assert upright(corners(decode(render(data, s="32x32")["s"])))
    # ImageMagick's way of keeping EXIF in a PNG, here with a body that is not hex.
    text = PngImagePlugin.PngInfo()
    text.add_text("Raw profile type exif", "\nexif\n  8\nnot hex")
    data = images.encode(images.pattern(), "PNG", pnginfo=text)
    assert upright(corners(decode(render(data, s="32x32")["s"])))


# render: modes, formats, metadata ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mode", "bottom_right"),
    [
        (images.png(mode="RGB"), "RGB", (*images.YELLOW, 255)),
        (images.png(mode="RGBA"), "RGBA", TRANSPARENT),
        (images.png(mode="P"), "RGB", (*images.YELLOW, 255)),
        (images.png_palette_transparent(), "RGBA", TRANSPARENT),
        (images.png(mode="L"), "L", (226, 226, 226, 255)),
        (images.png(mode="LA"), "LA", TRANSPARENT),
        (images.png(mode="1"), "L", (*WHITE, 255)),
    ],
    ids=["RGB", "RGBA", "P", "P-transparent", "L", "LA", "1"],
)
def test_render_handles_each_mode(data, mode, bottom_right):
    image = decode(render(data, s="40x40>")["s"])
    assert (image.format, image.mode, image.size) == ("PNG", mode, (40, 30))
    assert close(corners(image)[3], bottom_right, tolerance=2)


def test_render_scales_16_bit_grey_to_8_bit():
    image = decode(render(images.png((256, 8), mode="I;16"), s="64x64")["s"])
    row = [image.getpixel((x, 1)) for x in range(image.width)]
    assert image.mode == "L"
    assert row[0] < 5
    assert row[-1] > 250
    assert row[32] in range(120, 136)
    assert row == sorted(row)


@pytest.mark.parametrize(
    ("size", "red_width"),
    [((64, 48), 29), ((640, 480), 290)],  # the second goes through the whole-factor reduce()
    ids=["resize", "reduce-then-resize"],
)
def test_render_resamples_with_premultiplied_alpha(size, red_width):
    # Red beside transparent black: the blended edge must stay red, only more transparent.
    source = Image.new("RGBA", size, TRANSPARENT)
    source.paste((*images.RED, 255), (0, 0, red_width, size[1]))
    image = decode(render(images.encode(source, "PNG"), s="9x7!")["s"])
    edge = [image.getpixel((x, 3)) for x in range(9) if 16 < image.getpixel((x, 3))[3] < 240]
    assert edge
    assert all(close(p[:3], images.RED, tolerance=10) for p in edge)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (images.png(mode="RGBA"), "PNG"),
        (images.webp(alpha=True), "WEBP"),
        (images.gif(transparent=True), "GIF"),
    ],
)
def test_render_keeps_transparency(data, fmt):
    image = decode(render(data, s="32x32")["s"])
    assert image.format == fmt
    assert corners(image)[3][3] == 0
    assert upright([*corners(image)[:3], (*images.YELLOW, 255)])


@pytest.mark.parametrize(("mode", "opaque_mode"), [("RGBA", "RGB"), ("LA", "L")])
def test_render_drops_an_alpha_channel_that_is_opaque_everywhere(mode, opaque_mode):
    picture = images.pattern((64, 48)).convert(mode)  # alpha 255 in every pixel
    image = decode(render(images.encode(picture, "PNG"), s="32x24")["s"])
    assert image.mode == opaque_mode
    expected = picture.convert(opaque_mode).resize((32, 24), Image.LANCZOS).convert("RGB")
    assert all(
        close(image.convert("RGB").getpixel(xy), expected.getpixel(xy), tolerance=2)
        for xy in [(4, 4), (28, 4), (4, 20), (28, 20)]
    )


@pytest.mark.parametrize("data", [images.png(mode="RGBA"), images.png(mode="LA")])
def test_render_flattens_alpha_onto_white_for_jpeg(data):
    image = decode(render(data, s=("32x32", "jpeg"))["s"])
    assert image.mode in ("RGB", "L")
    assert close(corners(image)[3], (*WHITE, 255), tolerance=3)


def test_render_converts_cmyk_to_rgb():
    image = decode(render(images.jpeg(cmyk=True), s="32x32")["s"])
    assert image.mode == "RGB"
    assert upright(corners(image))


@pytest.mark.skipif(
    not images.CMYK_PROFILE.exists() and not os.environ.get("CI"),
    reason=f"needs Debian's CMYK ICC profile {images.CMYK_PROFILE} (apt-get install "
    "libgs-common, as CI does)",
)
def test_render_converts_cmyk_through_its_profile():
    data = images.jpeg(cmyk=True, icc=True)
    image = decode(render(data, s=("32x32", "png"))["s"])
    assert image.mode == "RGB"
    assert "icc_profile" not in image.info  # the CMYK profile; the result is sRGB
    source = Image.open(io.BytesIO(data))
    naive = source.convert("RGB").resize((32, 24))
    managed = ImageCms.profileToProfile(
        source, str(images.CMYK_PROFILE), ImageCms.createProfile("sRGB"), outputMode="RGB"
    ).resize((32, 24))
    assert all(close(a, b, 12) for a, b in zip(corners(image), corners(managed), strict=True))
    assert not all(close(a, b, 12) for a, b in zip(corners(image), corners(naive), strict=True))


def test_render_strips_every_metadata_and_profile():
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    data = images.encode(
        images.pattern(),
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=images.srgb_profile(),
        comment=b"secret",
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
    )
    out = render(data, jpeg="32x32", png=("32x32", "png"), webp=("32x32", "webp"))
    for rendition in out.values():
        image = decode(rendition)
        assert not {"icc_profile", "exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
        assert not image.getexif()
        assert upright(corners(image))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_huge_colour_profile_never_reaches_the_styles(fmt):
    # A style's bytes depend on its pixels: a 40 MB profile made a 100x67 WebP of 41.9 MB.
    data = hostile.with_profile(fmt, 1_000_000)
    out = render(data, s="100x100", png=("100x100", "png"), webp=("100x100", "webp"))
    for rendition in out.values():
        assert len(rendition.data) < 20_000
        assert b"<script" not in rendition.data
        assert "icc_profile" not in decode(rendition).info


@pytest.mark.parametrize("alpha", [False, True])
def test_render_converts_colours_to_srgb(alpha):
    # Red in a profile whose primaries are sRGB's with red and blue swapped is sRGB blue.
    picture = images.pattern(alpha=alpha)
    data = images.encode(picture, "PNG", icc_profile=images.swapped_profile())
    out = render(data, png="32x32", jpeg=("32x32", "jpeg"), webp=("32x32", "webp"))
    for rendition in out.values():
        image = decode(rendition)
        assert "icc_profile" not in image.info
        top_left, top_right, bottom_left, bottom_right = corners(image)
        assert close(top_left, (*images.BLUE, 255), 12), rendition.format
        assert close(top_right, (*images.GREEN, 255), 12)
        assert close(bottom_left, (*images.RED, 255), 12)
        if alpha and rendition.format != "JPEG":
            assert bottom_right[3] == 0


def test_render_converts_through_a_profile_without_a_description():
    profile = images.swapped_profile().replace(b"desc", b"dsc_")  # the tag table's entry
    data = images.encode(images.pattern(), "PNG", icc_profile=profile)
    assert close(corners(decode(render(data, s="32x32")["s"]))[0], (*images.BLUE, 255), 12)


@pytest.mark.parametrize(
    "profile",
    [b"<script>alert(1)</script>" * 100, images.swapped_profile()[:200]],
    ids=["not-a-profile", "cut-short"],
)
def test_render_takes_an_unusable_profile_for_srgb(profile):
    data = images.encode(images.pattern(), "JPEG", icc_profile=profile)
    image = decode(render(data, s=("32x32", "png"))["s"])
    assert "icc_profile" not in image.info
    assert upright(corners(image))


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_render_converts_grey_to_srgb(mode):
    picture = Image.new(mode, (32, 24), 128 if mode == "L" else (128, 255))
    if mode == "LA":
        picture.paste((0, 0), (16, 0, 32, 24))  # transparent on the right
    data = images.encode(picture, "PNG", icc_profile=images.linear_grey_profile())
    out = render(data, png="16x16", webp=("16x16", "webp"), jpeg=("16x16", "jpeg"))
    assert decode(out["png"]).mode == mode
    for rendition in out.values():
        image = decode(rendition)
        assert "icc_profile" not in image.info
        assert close(image.convert("RGB").getpixel((2, 6)), (188, 188, 188), 2), rendition.format


def test_render_takes_a_profile_for_the_other_kind_of_samples_for_srgb():
    grey = images.encode(images.pattern().convert("L"), "PNG", icc_profile=images.swapped_profile())
    out = render(grey, png="32x32", webp=("32x32", "webp"))
    assert decode(out["png"]).mode == "L"
    assert corners(decode(out["png"])) == corners(
        decode(render(images.png(mode="L"), s="32x32")["s"])
    )
    assert "icc_profile" not in decode(out["webp"]).info
    colour = images.encode(images.pattern(), "PNG", icc_profile=images.linear_grey_profile())
    assert corners(decode(render(colour, s="32x32")["s"])) == corners(
        decode(render(images.png(), s="32x32")["s"])
    )


def test_render_leaves_srgb_pixels_alone(monkeypatch):
    # The common case costs nothing: no transform is built for an sRGB profile.
    monkeypatch.setattr(ImageCms, "buildTransform", lambda *args, **kwargs: pytest.fail("built"))
    data = images.jpeg(icc=True)
    assert upright(corners(decode(render(data, s="32x32")["s"])))


def test_render_writes_progressive_jpeg_at_the_quality_asked():
    data = images.jpeg((256, 192))
    out = render(data, low={"geometry": "200x200", "quality": 20}, high="200x200")
    assert decode(out["high"]).info.get("progressive")
    assert len(out["low"].data) < len(out["high"].data)
    default = imaging.render(io.BytesIO(data), styles(s="200x200"), max_pixels=10**6)
    cheap = imaging.render(io.BytesIO(data), styles(s="200x200"), max_pixels=10**6, jpeg_quality=20)
    assert len(cheap["s"].data) < len(default["s"].data)


def test_render_honours_webp_quality():
    data = images.jpeg((256, 192))
    low = {"geometry": "200x200", "format": "webp", "quality": 20}
    out = render(data, low=low, high=("200x200", "webp"))
    assert len(out["low"].data) < len(out["high"].data)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (images.jpeg(), "JPEG"),
        (images.mpo(), "JPEG"),
        (images.png(), "PNG"),
        (images.gif(), "GIF"),
        (images.webp(), "WEBP"),
        (images.encode(images.pattern(), "BMP"), "PNG"),
        (images.encode(images.pattern((16, 16), alpha=True), "ICO", sizes=[(16, 16)]), "PNG"),
    ],
    ids=["JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "ICO"],
)
def test_render_keeps_the_original_format_or_falls_back_to_png(data, fmt):
    out = render(data, keep="32x32", webp=("32x32", "webp"))
    assert (out["keep"].format, out["keep"].extension) == (fmt, EXTENSIONS[fmt])
    assert (out["webp"].format, out["webp"].content_type) == ("WEBP", "image/webp")
    assert upright([*corners(decode(out["keep"]))[:3], (*images.YELLOW, 255)])


@pytest.mark.parametrize("data", [images.gif(frames=3), images.webp(frames=3)], ids=["GIF", "WEBP"])
def test_render_uses_the_first_frame_of_an_animation(data):
    image = decode(render(data, s="32x32")["s"])
    assert getattr(image, "n_frames", 1) == 1
    assert upright(corners(image))


# render: one decode, at the smallest useful size -----------------------------------------


def count_calls(monkeypatch, **targets: tuple[Any, str]) -> dict[str, int]:
    """Count the calls of each ``name=(owner, attribute)``, which still does its work."""
    calls = dict.fromkeys(targets, 0)
    for name, (owner, attribute) in targets.items():
        real = getattr(owner, attribute)

        def spy(*args, _name=name, _real=real, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, spy)
    return calls


def test_render_decodes_once_for_all_styles(monkeypatch):
    calls = count_calls(monkeypatch, open=(Image, "open"), decoder=(Image, "_getdecoder"))
    out = render(images.png((640, 480)), a="300x300", b="100x100#", c=("50x50", "webp"))
    assert len(out) == 3
    assert calls == {"open": 1, "decoder": 1}


def test_a_responsive_style_is_made_from_one_decode_one_resize_per_width(monkeypatch):
    calls = count_calls(
        monkeypatch,
        open=(Image, "open"),
        decoder=(Image, "_getdecoder"),
        resample=(imaging.rendering, "_resample"),  # where render calls it
    )
    hero = {"widths": [320, 640, 1280], "formats": ["avif", "webp", "jpeg"], "crop": "16:9"}
    out = render(images.jpeg((1000, 750)), hero=hero, thumb="100x100")
    # 1280 is wider than the original: its files are the widest 16:9 it holds.
    assert {key: (r.style, r.width, r.height) for key, r in out.items()} == {
        "thumb": ("thumb", 100, 75),
        **{
            f"hero-{w}w{ext}": ("hero", w, h)
            for w, h in ((320, 180), (640, 360), (1000, 562))
            for ext in (".avif", ".webp", ".jpg")
        },
    }
    assert calls == {"open": 1, "decoder": 1, "resample": 4}  # three widths and the thumb
    for rendition in out.values():
        decode(rendition)  # each a real file of its format and size


@pytest.fixture
def drafted(monkeypatch) -> list[tuple[int, int]]:
    """The size each JPEG will decode at, once render() has chosen its DCT scaling."""
    sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return sizes


def test_render_drafts_a_big_jpeg(drafted, big_jpeg):
    out = render(big_jpeg, thumb="100x100", square="100x100#")
    assert drafted == [(500, 375)]  # DCT-scaled to 1/8, still over twice the need
    assert (out["thumb"].width, out["thumb"].height) == (100, 75)
    assert upright(corners(decode(out["square"])))


def test_render_feeds_the_decoder_a_megabyte_at_a_time(monkeypatch):
    # Each call into the decoder gives the GIL back and takes it again, waiting
    # while another worker thread runs Python: 2.8 MB go in 3 calls, not 43.
    buffer = io.BytesIO()
    images.detail((2400, 1800)).save(buffer, "JPEG", quality=95)
    assert len(buffer.getvalue()) > 2 << 20
    calls = []
    real = Image._getdecoder

    class Counting:
        def __init__(self, decoder: Any) -> None:
            self.decoder = decoder

        def __getattr__(self, name: str) -> Any:
            return getattr(self.decoder, name)

        def decode(self, data: bytes) -> tuple[int, int]:
            calls.append(len(data))
            return self.decoder.decode(data)

    monkeypatch.setattr(Image, "_getdecoder", lambda *args: Counting(real(*args)))
    out = render(buffer.getvalue(), thumb="100x100")
    assert out["thumb"].width == 100
    assert len(calls) <= len(buffer.getvalue()) // (1 << 20) + 1


def test_render_decodes_at_full_size_when_a_style_needs_it(drafted):
    out = render(images.jpeg((800, 600)), thumb="100x100", large="500x500>")
    assert drafted == [(800, 600)]  # 800 is under twice 500: no DCT scaling
    assert (out["large"].width, out["large"].height) == (500, 375)


# render: bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        images.truncated(images.jpeg((256, 192))),
        images.truncated(images.png((256, 192))),
        images.truncated(images.gif((256, 192))),
        images.truncated(images.webp((256, 192))),
        images.corrupted(images.png((256, 192))),  # zlib notices
        b"not an image at all",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # never handed to Ghostscript
    ],
    ids=[
        "jpeg-truncated",
        "png-truncated",
        "gif-truncated",
        "webp-truncated",
        "png-corrupt",
        "text",
        "eps",
    ],
)
def test_render_rejects_undecodable_files(data):
    with pytest.raises(InvalidImage, match="damaged, incomplete or not an image"):
        render(data, s="32x32")


def test_render_enforces_the_pixel_limit():
    with pytest.raises(ImageTooLarge):
        render(images.png((64, 48)), max_pixels=3000, s="32x32")


@pytest.mark.parametrize(
    "error", [OSError(errno.EIO, "Input/output error"), TimeoutError("timed out")]
)
def test_render_lets_read_errors_through(error):
    data = images.png((256, 192))
    failing = FailingFile(data, len(data) // 2, error)
    with pytest.raises(type(error)) as caught:
        imaging.render(failing, styles(s="32x32"), max_pixels=10**6)
    assert not isinstance(caught.value, InvalidImage)


def test_render_rewinds_the_file():
    fp = io.BytesIO(images.jpeg())
    imaging.render(fp, styles(s="32x32"), max_pixels=10**6)
    assert fp.tell() == 0


class RecordingBudget(MemoryBudget):
    def __init__(self) -> None:
        super().__init__(None)
        self.requests: list[int] = []

    def hold(self, nbytes: int):
        self.requests.append(nbytes)
        return super().hold(nbytes)


def held_by(data: bytes) -> int:
    budget = RecordingBudget()
    imaging.render(io.BytesIO(data), styles(thumb="100x100>"), max_pixels=10**8, budget=budget)
    (nbytes,) = budget.requests
    return nbytes


def test_render_holds_its_pixels_within_the_budget():
    size = (1600, 1200)
    picture = images.pattern(size)
    baseline, progressive = (io.BytesIO(), io.BytesIO())
    picture.save(baseline, "JPEG", quality=90)
    picture.save(progressive, "JPEG", quality=90, progressive=True)
    # A baseline JPEG decodes at 1/8 scale here (twice the 100x75 thumbnail);
    # its share is that small decode: 4 bytes a pixel, twice for a converted copy.
    assert held_by(baseline.getvalue()) == 2 * 4 * 200 * 150
    # A progressive one also keeps every DCT coefficient of the full image:
    # 2 bytes each, 1.5 per pixel in 4:2:0.
    assert held_by(progressive.getvalue()) == 2 * 4 * 200 * 150 + 2 * 1.5 * 1600 * 1200
    # Formats without DCT scaling take their full size.
    assert held_by(images.png((800, 600))) == 2 * 4 * 800 * 600


def test_a_style_the_encoder_refuses_fails_alone():
    styles = parse_styles(
        {
            "ok": "10x10",
            "bad": {"geometry": "20x20", "format": "png", "options": {"compress_level": 99}},
            "lossless": {"geometry": "20x20", "format": "webp", "options": {"lossless": True}},
        }
    )
    rendered = imaging.render(
        io.BytesIO(images.png((40, 30))), list(styles.values()), max_pixels=10**6
    )
    assert sorted(rendered) == ["lossless", "ok"]
    assert rendered.size == (40, 30)
    assert "'bad'" in rendered.errors["bad"]
    assert "compress_level=99" in rendered.errors["bad"]
    assert rendered["ok"].fingerprint != rendered["lossless"].fingerprint


@pytest.mark.parametrize(
    ("geometry", "colour"),
    [("40x40#north", (255, 0, 0)), ("40x40#south", (0, 0, 255)), ("40x40#0.5,0.1", (255, 0, 0))],
)
def test_a_crop_cuts_where_its_gravity_says(geometry: str, colour: tuple[int, int, int]) -> None:
    banner = Image.new("RGB", (100, 300), (255, 0, 0))
    banner.paste((0, 0, 255), (0, 150, 100, 300))  # red above, blue below
    buffer = io.BytesIO()
    banner.save(buffer, "PNG")
    out = Image.open(io.BytesIO(render(buffer.getvalue(), s=geometry)["s"].data)).convert("RGB")
    assert out.size == (40, 40)
    assert {out.getpixel((x, y)) for x in (0, 39) for y in (0, 39)} == {colour}


def _recording_processor(seen: list[str], mode: str | None = None) -> Any:
    def processor(image: Image.Image) -> Image.Image:
        seen.append(image.mode)
        return image

    if mode:
        processor.mode = mode  # type: ignore[attr-defined]
    return processor


def test_processors_run_in_order_on_the_resized_image():
    def stripe(image: Image.Image) -> Image.Image:
        image = image.copy()
        image.paste((255, 0, 0), (0, 0, image.width, 2))
        return image

    rendered = render(
        images.png((400, 300)),
        s={
            "geometry": "40x30",
            "format": "png",
            "processors": [stripe, "attachments.processors.grayscale"],
        },
        plain={"geometry": "40x30", "format": "png"},
    )
    out = decode(rendered["s"])
    assert out.size == (40, 30)
    assert out.mode == "L"
    assert out.getpixel((20, 0)) == 76  # ... of red, its luma; at the resized size
    assert decode(rendered["plain"]).mode == "RGB"
    assert rendered["s"].fingerprint != rendered["plain"].fingerprint


@pytest.mark.parametrize(
    ("source_mode", "wanted", "seen_mode"),
    [("RGBA", None, "RGBA"), ("RGB", None, "RGB"), ("RGBA", "RGB", "RGB"), ("L", "RGBA", "RGBA")],
)
def test_a_processor_gets_the_mode_it_declares(source_mode, wanted, seen_mode):
    seen: list[str] = []
    data = images.encode(
        Image.new(source_mode, (50, 50), 128 if source_mode == "L" else (9, 8, 7, 200)), "PNG"
    )
    imaging.render(
        io.BytesIO(data),
        [
            Style(
                "s",
                parse_geometry("10x10"),
                processors=(Processor.of(_recording_processor(seen, wanted)),),
            )
        ],
        max_pixels=10**6,
    )
    assert seen == [seen_mode]


def test_a_processor_sees_straight_alpha_not_premultiplied():
    source = Image.new("RGBA", (50, 50), (200, 100, 50, 128))
    alphas: list[tuple[int, int, int, int]] = []

    def look(image: Image.Image) -> Image.Image:
        alphas.append(image.getpixel((5, 5)))
        return image

    render(
        images.encode(source, "PNG"), s={"geometry": "10x10", "format": "png", "processors": [look]}
    )
    red, _green, blue, alpha = alphas[0]
    assert alpha in (127, 128, 129)
    assert abs(red - 200) <= 2
    assert abs(blue - 50) <= 2


def test_a_processor_that_raises_fails_its_style_alone_naming_it():
    def watermark(image: Image.Image) -> Image.Image:
        raise RuntimeError("no font")

    rendered = imaging.render(
        io.BytesIO(images.png((40, 30))),
        styles(
            ok="10x10",
            marked={"geometry": "20x20", "processors": [watermark]},
            wrong={"geometry": "20x20", "processors": [lambda image: "not an image"]},
            gone={"geometry": "20x20", "processors": ["attachments.processors.nothing_here"]},
        ),
        max_pixels=10**6,
    )
    assert sorted(rendered) == ["ok"]
    assert "'marked'" in rendered.errors["marked"]
    assert (
        "test_a_processor_that_raises_fails_its_style_alone_naming_it.<locals>.watermark"
        in (rendered.errors["marked"])
    )
    assert "RuntimeError: no font" in rendered.errors["marked"]
    assert "returned str, not a PIL image" in rendered.errors["wrong"]
    assert "'attachments.processors.nothing_here' cannot be imported" in rendered.errors["gone"]


def test_what_a_processor_returns_is_made_encodable():
    def to_palette(image: Image.Image) -> Image.Image:
        paletted = image.convert("P")
        paletted.info["exif"] = b"Exif\x00\x00secret"
        return paletted

    rendered = render(
        images.png((40, 30)), s={"geometry": "20x20", "format": "webp", "processors": [to_palette]}
    )
    out = decode(rendered["s"])
    assert out.mode == "RGB"
    assert "exif" not in out.info


COLOURS = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (250, 250, 0)]


def animation(fmt: str, size: tuple[int, int] = (80, 60), frames: int = 4, **params: Any) -> bytes:
    """An animation whose frame i is filled with COLOURS[i % 4], lasting 100 * (i + 1) ms."""
    pictures = [Image.new("RGB", size, COLOURS[i % 4]) for i in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer,
        fmt,
        save_all=True,
        append_images=pictures[1:],
        duration=[100 * (i + 1) for i in range(frames)],
        **params,
    )
    return buffer.getvalue()


def frames_of(rendition: imaging.Rendition) -> list[tuple[tuple[int, int, int], int]]:
    image = Image.open(io.BytesIO(rendition.data))
    assert image.format == rendition.format
    seen = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        seen.append((image.convert("RGB").getpixel((10, 10)), image.info.get("duration", 0)))
    return seen


def near(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(colour, expected, strict=True))


@pytest.mark.parametrize(
    ("source", "target"), [("GIF", None), ("WEBP", None), ("GIF", "webp"), ("WEBP", "gif")]
)
def test_an_animated_style_keeps_frames_durations_and_loop(source, target):
    data = animation(source, loop=3)
    rendered = render(
        data,
        moving={"geometry": "40x30", "animated": True, "format": target},
        still={"geometry": "40x30", "format": target},
    )
    moving = frames_of(rendered["moving"])
    assert [duration for _, duration in moving] == [100, 200, 300, 400]
    assert all(near(colour, COLOURS[i]) for i, (colour, _) in enumerate(moving))
    out = Image.open(io.BytesIO(rendered["moving"].data))
    assert out.size == (40, 30)
    assert out.info["loop"] == 3
    # The same upload's other style gets the first frame, as before.
    (still,) = frames_of(rendered["still"])
    assert near(still[0], COLOURS[0])


def test_a_gif_without_a_loop_count_still_plays_once_as_webp():
    rendered = render(animation("GIF"), s={"geometry": "40x30", "animated": True, "format": "webp"})
    assert Image.open(io.BytesIO(rendered["s"].data)).info["loop"] == 1


def test_an_animated_style_of_a_still_image_is_one_frame():
    rendered = render(images.png((80, 60)), s={"geometry": "40x30", "animated": True})
    assert rendered["s"].format == "PNG"
    assert len(frames_of(rendered["s"])) == 1


def test_processors_run_on_every_frame():
    rendered = render(
        animation("GIF"),
        s={
            "geometry": "40x30",
            "animated": True,
            "processors": ["attachments.processors.grayscale"],
        },
    )
    colours = [colour for colour, _ in frames_of(rendered["s"])]
    assert len(colours) == 4
    assert all(red == green == blue for red, green, blue in colours)
    assert len(set(colours)) == 4


def test_a_transparent_animation_does_not_show_earlier_frames_through():
    pictures = [
        Image.new("RGBA", (40, 30), (255, 0, 0, 255)),
        Image.new("RGBA", (40, 30), (0, 0, 0, 0)),
    ]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "WEBP", save_all=True, append_images=pictures[1:], duration=[50, 50])
    rendered = render(buffer.getvalue(), s={"geometry": "40x30", "animated": True, "format": "gif"})
    out = Image.open(io.BytesIO(rendered["s"].data))
    out.seek(1)
    assert out.convert("RGBA").getpixel((10, 10))[3] == 0


@pytest.mark.parametrize(
    ("frames", "max_frames", "max_pixels", "message"),
    [(6, 5, 10**6, "more than 5 frames"), (6, 50, 5 * 80 * 60, "more than 24,000 pixels in all")],
)
def test_animation_limits_fail_the_animated_style_alone(frames, max_frames, max_pixels, message):
    rendered = imaging.render(
        io.BytesIO(animation("GIF", frames=frames)),
        styles(moving={"geometry": "40x30", "animated": True}, still="40x30"),
        max_pixels=max_pixels,
        max_frames=max_frames,
    )
    assert sorted(rendered) == ["still"]
    assert rendered.errors["moving"].startswith("Style 'moving': The animation")
    assert message in rendered.errors["moving"]
    # Exactly at the limits, it is made.
    rendered = imaging.render(
        io.BytesIO(animation("GIF", frames=frames - 1)),
        styles(moving={"geometry": "40x30", "animated": True}),
        max_pixels=max_pixels,
        max_frames=max_frames,
    )
    assert len(frames_of(rendered["moving"])) == frames - 1


needs_avif = pytest.mark.skipif(not imaging.encodes("AVIF"), reason="this Pillow cannot write AVIF")


@needs_avif
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_a_style_may_be_written_as_avif(mode):
    source = images.pattern((200, 150), alpha=mode == "RGBA")
    if mode == "L":
        source = source.convert("L")
    rendered = imaging.render(
        io.BytesIO(images.encode(source, "PNG")),
        styles(
            s=("100x75", "avif"), better={"geometry": "100x75", "format": "avif", "quality": 90}
        ),
        max_pixels=10**6,
        avif_quality=40,
    )
    out = decode(rendered["s"])
    assert (rendered["s"].extension, rendered["s"].content_type) == (".avif", "image/avif")
    assert out.size == (100, 75)
    assert out.mode == ("RGBA" if mode == "RGBA" else "RGB")
    # The configured default applies, a style's own quality overrides it.
    assert len(rendered["s"].data) < len(rendered["better"].data)


def test_encodes_says_what_this_pillow_writes():
    assert imaging.encodes("JPEG")
    assert not imaging.encodes("NOPE")
    assert imaging.encodes("AVIF") == ("AVIF" in Image.SAVE)
