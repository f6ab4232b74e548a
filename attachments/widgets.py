"""Form widgets that show an attachment's current image, placeholder or error."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.widgets import AdminFileWidget
from django.forms import ClearableFileInput
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from . import previews, status
from .styles import smallest

# The largest side of the image a form shows, in CSS pixels.
BOX = 200


class AttachmentWidget(ClearableFileInput):
    """A file input with a preview: the smallest style, or the placeholder while processing."""

    class Media:
        js = ["attachments/attachments.js"]

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        return format_html(
            "{}{}", self._preview(value), super().render(name, value, attrs, renderer)
        )

    def _preview(self, value: Any) -> SafeString | str:
        if not getattr(value, "name", None) or not hasattr(value, "state"):
            return ""
        style = smallest(value.field.styles)
        attrs = status.img_attrs(value, style.name) if style else {"src": value.url}
        labels = {
            "processing": _("Processing…"),
            "failed": _("Processing failed; the original is kept and the job can be retried."),
        }
        width, height = attrs.pop("width", None), attrs.pop("height", None)
        if width and height:
            # The style's box shrunk into the form's: the blurred preview fills the
            # box the image will, and the image (1280 pixels wide for a banner) fits.
            scale = min(1, BOX / max(width, height))
            attrs["width"], attrs["height"] = (max(1, round(n * scale)) for n in (width, height))
            box = "display:block"
            if "data-attachment-blurred" in attrs:
                box = f"{previews.img_style(attrs['width'], attrs['height'])};{box}"
        else:
            box = f"display:block;max-width:{BOX}px;max-height:{BOX}px"
        # One style attribute: a browser keeps the first of two, the preview's, which
        # dropped the box and showed the 24-pixel preview at its own size.
        attrs["style"] = box
        # Every label is there, shown in its own state only, so that the
        # failure of an upload shown as processing can be told in place.
        return format_html(
            '<div class="attachment-preview" data-attachment-preview data-state="{}">'
            '<img{} alt="">'
            "{}</div>",
            value.state,
            flatatt(attrs),
            format_html_join(
                "",
                '<p class="help"{}>{}</p>',
                (
                    (
                        flatatt({"data-attachment-label": state, "hidden": state != value.state}),
                        text,
                    )
                    for state, text in labels.items()
                    if value.state != "ready"
                ),
            ),
        )


class AdminAttachmentWidget(AttachmentWidget, AdminFileWidget):
    """The admin's file widget with the attachment preview."""
