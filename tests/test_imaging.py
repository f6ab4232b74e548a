"""attachments.imaging on real files encoded and decoded by Pillow (see tests/images.py)."""

from __future__ import annotations

import errno
import io
from typing import Any

import pytest
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, PngImagePlugin

from attachments import imaging
from attachments.exceptions import ImageTooLarge, InvalidImage
from attachments.geometry import parse_geometry
from attachments.memory import MemoryBudget
from attachments.styles import Style, parse_styles
from tests import images

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
    assert info == imaging.ImageInfo(format=fmt, width=64, height=48, mode=mode, frames=1)
    assert (info.extension, info.content_type) == (extension, content_type)


def test_probe_reports_the_upright_size_and_frames():
    info = probe(images.jpeg(exif_orientation=6))  # stored 48x64
    assert (info.width, info.height) == (64, 48)
    assert probe(images.gif(frames=3)).frames == 3
    assert probe(images.webp(frames=2)).frames == 2
    assert probe(images.mpo()) == imaging.ImageInfo("JPEG", 64, 48, "RGB", 1)


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
    # Far past Pillow's own bomb limit, which fires inside Image.open.
    with pytest.raises(ImageTooLarge, match="too many to be processed"):
        probe(images.png_claiming((30000, 30000)), max_pixels=10**10)


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


@pytest.mark.skipif(not images.CMYK_PROFILE.exists(), reason="no CMYK ICC profile here")
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


def test_render_keeps_the_icc_profile_and_strips_other_metadata():
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    profile = images.srgb_profile()
    data = images.encode(
        images.pattern(),
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=profile,
        comment=b"secret",
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
    )
    out = render(data, jpeg="32x32", png=("32x32", "png"), webp=("32x32", "webp"))
    for rendition in out.values():
        image = decode(rendition)
        assert image.info.get("icc_profile") == profile, rendition.format
        assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
        assert not image.getexif()


def test_render_does_not_put_a_grey_profile_on_colour_output():
    profile = images.srgb_profile()  # stands in for a grey profile: only the mode matters
    data = images.encode(images.pattern().convert("L"), "PNG", icc_profile=profile)
    out = render(data, png="32x32", webp=("32x32", "webp"))
    assert decode(out["png"]).info.get("icc_profile") == profile
    assert "icc_profile" not in decode(out["webp"]).info


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


def test_render_decodes_once_for_all_styles(monkeypatch):
    calls = {"open": 0, "decoder": 0}
    real_open, real_decoder = Image.open, Image._getdecoder

    def spy_open(*args, **kwargs):
        calls["open"] += 1
        return real_open(*args, **kwargs)

    def spy_decoder(*args, **kwargs):
        calls["decoder"] += 1
        return real_decoder(*args, **kwargs)

    monkeypatch.setattr(Image, "open", spy_open)
    monkeypatch.setattr(Image, "_getdecoder", spy_decoder)
    out = render(images.png((640, 480)), a="300x300", b="100x100#", c=("50x50", "webp"))
    assert len(out) == 3
    assert calls == {"open": 1, "decoder": 1}


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
