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
        width_field="image_width",
        height_field="image_height",
        blank=True,
    )
    image_width = models.PositiveIntegerField(null=True, editable=False)
    image_height = models.PositiveIntegerField(null=True, editable=False)


class Avatar(models.Model):
    """Processed in the request, for small sites."""

    image = AttachmentField(
        upload_to="avatars", styles={"icon": "32x32#"}, process_in_background=False
    )


class Gallery(models.Model):
    """A parent whose photos are edited inline in the admin."""

    name = models.CharField(max_length=100)


class GalleryPhoto(models.Model):
    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="photos")
    image = AttachmentField(upload_to="galleries", styles={"thumb": "80x80#"}, blank=True)
