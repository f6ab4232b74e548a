from __future__ import annotations

import pytest
from PIL import Image, ImageStat

from attachments import processors


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
