from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from attachments import imaging, processors
from attachments.geometry import parse_geometry
from attachments.styles import Processor, Style
from tests import images


@pytest.mark.parametrize(
    ("mode", "expected"), [("L", "L"), ("LA", "LA"), ("RGB", "L"), ("RGBA", "LA")]
)
def test_grayscale_keeps_transparency(mode, expected):
    colour = {"L": 100, "LA": (100, 50), "RGB": (255, 0, 0), "RGBA": (255, 0, 0, 50)}[mode]
    out = processors.grayscale(Image.new(mode, (4, 4), colour))
    assert out.mode == expected
    assert out.getpixel((1, 1)) == {"L": 100, "LA": (100, 50), "RGB": 76, "RGBA": (76, 50)}[mode]


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_sharpen_steepens_an_edge_and_keeps_the_mode(mode):
    soft = Image.linear_gradient("L").resize((64, 64)).convert(mode)
    edge = Image.new("L", (64, 64), 60)
    edge.paste(190, (32, 0, 64, 64))
    edge = edge.resize((16, 16), Image.Resampling.BILINEAR).resize((64, 64)).convert(mode)
    for image in (soft, edge):
        out = processors.sharpen(image)
        assert out.mode == mode
        assert out.size == image.size
    spread = [ImageStat.Stat(im.getchannel(0)).stddev[0] for im in (edge, processors.sharpen(edge))]
    assert spread[1] > spread[0]


def test_the_documented_watermark_marks_the_corner(tmp_path):
    page = (Path(__file__).parent.parent / "docs" / "howto" / "processors.md").read_text()
    code = page.split("## A watermark", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "processors.md", "exec"), namespace)
    watermark = namespace["watermark"]
    assert watermark.mode == "RGBA"
    style = Style(
        "print", parse_geometry("400x300"), format="JPEG", processors=(Processor.of(watermark),)
    )
    rendered = imaging.render(
        io.BytesIO(images.jpeg(picture=Image.new("RGB", (800, 600)))), [style], max_pixels=10**6
    )
    out = Image.open(io.BytesIO(rendered["print"].data)).convert("L")
    assert out.size == (400, 300)
    assert out.crop((300, 260, 400, 300)).getextrema()[1] > 80  # the mark
    assert out.crop((0, 0, 200, 150)).getextrema()[1] < 20  # the rest untouched
