"""Colour: decoded pixels into the modes we resample, and styles into sRGB."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

_SRGB = ImageCms.createProfile("sRGB")

_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            converted = ImageCms.profileToProfile(im, io.BytesIO(icc), _SRGB, outputMode="RGB")
            assert converted is not None  # None only when converting in place
            return converted
        except ImageCms.PyCMSError:
            pass  # A broken or non-CMYK profile: fall back to the plain formula.
    # (255 - C) * (255 - K) / 255 per channel; Pillow has already undone Adobe's inversion.
    return im.convert("RGB")


def _srgb_transform(icc: bytes | None, *, grey: bool) -> ImageCms.ImageCmsTransform | None:
    """The transform from the original's profile to sRGB; None where none is needed.

    Styles carry no profile, so browsers show them as sRGB: pixels in another
    space must be converted. An sRGB profile (by its description) needs nothing,
    and neither does one that cannot be used (unreadable, or for the other kind of
    samples): the image is then taken as sRGB, as a browser does without a profile.
    """
    if not icc:
        return None
    try:
        profile = ImageCms.getOpenProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space != ("GRAY" if grey else "RGB") or _is_srgb(profile):
            return None
        return ImageCms.buildTransform(profile, _SRGB, "L" if grey else "RGB", "RGB")
    except ImageCms.PyCMSError:
        return None


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    # "sRGB IEC61966-2.1", "sRGB built-in", "sRGB v4 ICC preference", ... but not
    # the linear variants some tools write.
    description = (profile.profile.profile_description or "").lower()  # None if untitled
    return description.startswith("srgb") and "linear" not in description


def _normalise(im: Image.Image) -> Image.Image:
    """Convert to "L", "LA", "RGB" or "RGBA": the modes LANCZOS resamples well."""
    if im.mode in _SIXTEEN_BIT:
        # Scale 0-65535 to 0-255: convert("L") alone clips, turning most of it white.
        return im.point(lambda v: v / 257).convert("L")
    grey = im.mode in ("1", "L", "LA", "La")
    alpha = im.has_transparency_data  # an alpha band, or a transparent palette entry/colour
    mode = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
    return im if im.mode == mode else im.convert(mode)


def _apply(transform: ImageCms.ImageCmsTransform, image: Image.Image) -> Image.Image:
    """Convert a style to sRGB: after resampling, where it has the fewest pixels."""
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert(image.mode[:-1]) if alpha is not None else image
    converted = transform.apply(colour)
    if image.mode.startswith("L"):
        converted = converted.convert("L")  # neutral greys come out with R = G = B
    if alpha is not None:
        converted.putalpha(alpha)
    converted.info = {}  # apply() labels its output with the sRGB profile
    return converted
