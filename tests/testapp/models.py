from django.db import models

from attachments import AttachmentField


class Photo(models.Model):
    """Every kind of style declaration, processed in the background."""

    image = AttachmentField(
        upload_to="photos/%Y",
        styles={
            "small": "50x50>",
            "wide": ("300x100#", "png"),
            "preview": {"geometry": "40x40", "format": "webp", "quality": 70},
        },
        blank=True,
    )


class Avatar(models.Model):
    """Processed in the request, for small sites."""

    image = AttachmentField(
        upload_to="avatars", styles={"icon": "32x32#"}, process_in_background=False
    )
