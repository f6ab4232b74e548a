"""``{% attachment_img item.image "thumb" %}`` and ``{% attachment_script %}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.forms.utils import flatatt
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import status

register = template.Library()


@register.simple_tag
def attachment_img(file: Any, style: str, alt: str = "", **attrs: Any) -> SafeString | str:
    """Render an ``<img>`` of ``style``; while processing, the placeholder that swaps itself."""
    if not file:
        return ""
    if style not in file.field.styles:
        raise template.TemplateSyntaxError(
            f"{file.field.field_id} has no style {style!r}; it has {sorted(file.field.styles)}."
        )
    # data_role="x" becomes data-role="x"; class="x" works as it is.
    extra = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
    return format_html("<img{}>", flatatt({**status.img_attrs(file, style), "alt": alt, **extra}))


@register.simple_tag
def attachment_script() -> SafeString:
    """Render the script that swaps placeholders for images; include it once per page."""
    return format_html('<script src="{}" defer></script>', static("attachments/attachments.js"))
