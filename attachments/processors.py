"""Processors to name in a style's ``processors``: each takes and returns a Pillow image.

``{"geometry": "300x300>", "processors": ["attachments.processors.grayscale"]}``.
A processor's ``mode`` attribute is the colour mode it is handed the image in;
without one it gets what the resize made: "L", "LA", "RGB" or "RGBA", alpha
straight (not premultiplied), colours in sRGB.
"""

from __future__ import annotations

from PIL import Image, ImageFilter, ImageOps

__all__ = ["grayscale", "sharpen"]


def grayscale(image: Image.Image) -> Image.Image:
    """Shades of grey, keeping any transparency."""
    if image.mode in ("L", "LA"):
        return image
    grey = ImageOps.grayscale(image)  # ITU-R 601-2 luma, as convert("L")
    if image.mode == "RGBA":
        grey.putalpha(image.getchannel("A"))
    return grey


def sharpen(image: Image.Image) -> Image.Image:
    """An unsharp mask suited to downscaled photos, which resampling softens.

    Radius 1 px, 60 %, threshold 2 levels: about what ImageMagick users pass as
    ``-unsharp 0x1+0.6+0.008`` after ``-resize``. Alpha is sharpened too, the
    edges of a cut-out crisp as its inside.
    """
    return image.filter(ImageFilter.UnsharpMask(radius=1, percent=60, threshold=2))
