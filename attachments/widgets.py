"""Form widgets that show an attachment's current image, placeholder or error.

Once the image is ready, and the field has crop styles that follow a focal
point, the preview is a picker: a whole-frame picture with a marker at the
focal point; clicking it moves the marker and a hidden ``<name>-focus`` input
(``x,y``), which ``AttachmentFormField`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.admin.widgets import AdminFileWidget
from django.forms import ClearableFileInput
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from . import plan, previews, status
from .styles import smallest

# The largest side of the image a form shows, in CSS pixels.
BOX = 200

# The picker's picture is the smallest made style at least this wide that
# keeps the whole frame, else the original (shown at most 300px wide): large
# enough to click on, and a click on it is a fraction of the original's width
# and height. Declaring such a style spares the admin the original's bytes.
PICKER_MIN_WIDTH = 240
FOCUS_SUFFIX = "-focus"


@dataclass(frozen=True)
class Posted:
    """What a form with a focal point input posted for an attachment."""

    upload: Any  # what the file input alone gives (an upload, False to clear, None)
    focus: str  # "x,y" as fractions, "" when not clicked


class AttachmentWidget(ClearableFileInput):
    """A file input with a preview: the smallest style, or the placeholder while processing."""

    class Media:
        js = ["attachments/attachments.js", "attachments/focus.js"]
        css = {"all": ["attachments/focus.css"]}

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        preview = self._picker(name, value) or self._preview(value)
        return format_html("{}{}", preview, super().render(name, value, attrs, renderer))

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        upload = super().value_from_datadict(data, files, name)
        focus = data.get(name + FOCUS_SUFFIX)
        return upload if focus is None else Posted(upload, focus)

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        # A posted focal point is a value, even without a file.
        omitted: bool = super().value_omitted_from_data(data, files, name)
        return omitted and name + FOCUS_SUFFIX not in data

    def _picker(self, name: str, value: Any) -> SafeString | str:
        """The focal point picker, for a ready image whose field has styles that follow it."""
        if not getattr(value, "ready", False):
            return ""
        styles = value.field.styles
        if not any(plan.follows_focus(style) for style in styles.values()):
            return ""
        focus = value.focus
        x, y = focus or (0.5, 0.5)
        return format_html(
            '<div class="attachment-preview attachment-focus" data-attachment-focus'
            ' data-state="ready">'
            '<div class="attachment-focus-frame">'
            '<img src="{}" alt="{}" tabindex="0" loading="lazy" data-attachment-focus-image>'
            '<span class="attachment-focus-marker" data-attachment-focus-marker'
            ' style="left:{}%;top:{}%"{}></span></div>'
            '<input type="hidden" name="{}" value="{}">'
            '<p class="help">{}</p></div>',
            _picture_url(value),
            _("Focal point"),
            f"{x * 100:.2f}",
            f"{y * 100:.2f}",
            "" if focus else " hidden",
            name + FOCUS_SUFFIX,
            f"{focus[0]},{focus[1]}" if focus else "",
            _(
                "Click the image, or move with the arrow keys, to choose its focal point: "
                "crops keep it in frame."
            ),
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


def _picture_url(file: Any) -> str:
    """A picture of the whole frame to click on: see ``PICKER_MIN_WIDTH``."""
    wide = []
    for name, style in file.field.styles.items():
        size = file.style_size(name)
        if (
            style.geometry.flag != "#"
            and file.style_file(name)
            and size
            and size[0] >= PICKER_MIN_WIDTH
        ):
            wide.append((size[0] * size[1], name))
    return file.style_url(min(wide)[1]) if wide else str(file.url)
