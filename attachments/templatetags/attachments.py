"""``{% attachment_img %}``, ``{% attachment_picture %}`` and ``{% attachment_script %}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.forms.utils import flatatt
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import pictures, status

register = template.Library()


@register.simple_tag
def attachment_img(file: Any, style_name: str, alt: str = "", **attrs: Any) -> SafeString | str:
    """Render an ``<img>`` of a style; while processing, the placeholder that swaps itself.

    ``style="..."`` is the ``<img>``'s CSS, as any other attribute (hence ``style_name``).
    """
    if not file:
        return ""
    _check_style(file, style_name)
    img = status.img_attrs(file, style_name)
    return format_html("<img{}>", flatatt(_img(img, alt, attrs)))


@register.simple_tag
def attachment_picture(
    file: Any, style_name: str, sizes: str = "100vw", alt: str = "", **attrs: Any
) -> SafeString | str:
    """Render a ``<picture>`` of a responsive style: a ``<source>`` per format, an ``<img>``.

    While its files are not made, the ``<img>`` alone, as ``attachment_img``
    renders it: the placeholder swaps itself, sources and all. ``style="..."``
    is the ``<img>``'s CSS.
    """
    if not file:
        return ""
    _check_style(file, style_name)
    if not file.field.styles[style_name].responsive:
        raise template.TemplateSyntaxError(
            f"Style {style_name!r} of {file.field.field_id} declares no widths; "
            "use attachment_img for it."
        )
    img = status.img_attrs(file, style_name)
    made = pictures.picture(file, style_name)
    if made is not None:
        img.update(srcset=made.srcset, sizes=sizes)
    elif "data-attachment-status" in img:
        img["data-attachment-sizes"] = sizes  # for attachments.js, once made
    sources = format_html_join(
        "",
        "<source{}>",
        ((flatatt({"type": t, "srcset": srcset, "sizes": sizes}),) for t, srcset in made.sources)
        if made
        else [],
    )
    return format_html(
        "<picture>{}<img{}></picture>",
        sources,
        flatatt(_img(img, alt, attrs)),
    )


def _check_style(file: Any, style: str) -> None:
    if style not in file.field.styles:
        raise template.TemplateSyntaxError(
            f"{file.field.field_id} has no style {style!r}; it has {sorted(file.field.styles)}."
        )


def _img(img: dict[str, Any], alt: str, attrs: dict[str, Any]) -> dict[str, Any]:
    # data_role="x" becomes data-role="x"; class="x" works as it is.
    given = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
    if "style" in img and "style" in given:
        # The page's own rules after the preview's blur: both apply, the page's win
        # where both speak. Replacing it showed the 24-pixel preview unblurred.
        given["style"] = f"{img['style']}; {given['style']}"
    return {**img, "alt": alt, **given}


@register.simple_tag
def attachment_script() -> SafeString:
    """Render the script that swaps placeholders for images; include it once per page."""
    return format_html('<script src="{}" defer></script>', static("attachments/attachments.js"))
