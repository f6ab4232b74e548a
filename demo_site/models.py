from django.db import models

from attachments import AttachmentField


class Item(models.Model):
    title = models.CharField(max_length=200)
    image = AttachmentField(
        upload_to="items",
        styles={"thumb": "100x100>", "square": "200x200#"},
        process_in_background=True,
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Banner(models.Model):
    """A wide picture for the top of a page, shown with {% attachment_picture %}."""

    title = models.CharField(max_length=200)
    image = AttachmentField(
        upload_to="banners",
        styles={
            # Three widths in three formats, best first, all cropped to 16:9.
            "hero": {
                "widths": [320, 640, 1280],
                "formats": ["avif", "webp", "jpeg"],
                "crop": "16:9",
            },
        },
    )

    def __str__(self) -> str:
        return self.title
