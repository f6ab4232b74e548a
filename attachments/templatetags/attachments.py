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
def attachment_img(file: Any, style: str, alt: str = "", **attrs: Any) -> SafeString | str:
    """Render an ``<img>`` of ``style``; while processing, the placeholder that swaps itself."""
    if not file:
        return ""
    _check_style(file, style)
    return format_html(
        "<img{}>", flatatt({**status.img_attrs(file, style), "alt": alt, **_attrs(attrs)})
    )


@register.simple_tag
def attachment_picture(
    file: Any, style: str, sizes: str = "100vw", alt: str = "", **attrs: Any
) -> SafeString | str:
    """Render a ``<picture>`` of a responsive style: a ``<source>`` per format, an ``<img>``.

    While its files are not made, the ``<img>`` alone, as ``attachment_img``
    renders it: the placeholder swaps itself, sources and all.
    """
    if not file:
        return ""
    _check_style(file, style)
    if not file.field.styles[style].responsive:
        raise template.TemplateSyntaxError(
            f"Style {style!r} of {file.field.field_id} declares no widths; "
            "use attachment_img for it."
        )
    img = status.img_attrs(file, style)
    made = pictures.picture(file, style)
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
        flatatt({**img, "alt": alt, **_attrs(attrs)}),
    )


def _check_style(file: Any, style: str) -> None:
    if style not in file.field.styles:
        raise template.TemplateSyntaxError(
            f"{file.field.field_id} has no style {style!r}; it has {sorted(file.field.styles)}."
        )


def _attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    # data_role="x" becomes data-role="x"; class="x" works as it is.
    return {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}


@register.simple_tag
def attachment_script() -> SafeString:
    """Render the script that swaps placeholders for images; include it once per page."""
    return format_html('<script src="{}" defer></script>', static("attachments/attachments.js"))
