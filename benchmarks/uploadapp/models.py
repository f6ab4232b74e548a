"""One model per kind of upload the benchmarks compare."""

from __future__ import annotations

from django.db import models

from attachments import AttachmentField

STYLES = {"thumb": "100x100>", "square": "200x200#"}
# Four times the styles: the upload must not take longer for them.
MANY_STYLES = {
    **STYLES,
    **{f"extra{i}": f"{size}x{size}>" for i, size in enumerate((64, 320, 480, 640, 800, 1024))},
}


class _Upload(models.Model):
    image: models.FileField

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return str(self.image)


class PlainUpload(_Upload):
    """A plain FileField: what an upload costs without this app."""

    image = models.FileField(upload_to="plain")


class BackgroundUpload(_Upload):
    image = AttachmentField(upload_to="background", styles=STYLES)


class ManyStylesUpload(_Upload):
    image = AttachmentField(upload_to="many", styles=MANY_STYLES)


class ForegroundUpload(_Upload):
    image = AttachmentField(upload_to="foreground", styles=STYLES, process_in_background=False)
