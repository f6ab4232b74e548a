"""Read uploaded images and encode their styles: Pillow is imported here (and by processors).

``probe`` reads just the header of an upload (in the request, so it must stay
fast however large the image). ``render`` decodes the original once, at the
smallest size that still serves the largest style in full quality, and encodes
every style from that one decode (in the worker), running each style's
processors between its resize and its encoding. The styles that keep an
animation read its further frames from the same opened file, one at a time.

Sizes are planned on the image as displayed, i.e. after its EXIF orientation,
and at its original size even when JPEG DCT scaling decodes it smaller, so the
outputs have exactly the sizes ImageMagick would give.

One module per step: ``probing`` (the header, the orientation, the pixel limit),
``decoding`` (the one decode, within the memory budget), ``colour`` (modes and
sRGB), ``rendering`` (the plan executed on the decode) and ``encoding``.
"""

from .encoding import encodes
from .probing import DEFAULT_FORMATS, ImageInfo, probe, upright
from .rendering import Rendered, Rendition, Shrink, render

__all__ = [
    "DEFAULT_FORMATS",
    "ImageInfo",
    "Rendered",
    "Rendition",
    "Shrink",
    "encodes",
    "probe",
    "render",
    "upright",
]
