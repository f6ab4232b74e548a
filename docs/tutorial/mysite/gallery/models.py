from django.db import models

from attachments import AttachmentField


class Photo(models.Model):
    title = models.CharField(max_length=200)
    image = AttachmentField(
        upload_to="photos",
        styles={
            "thumb": "200x200#",  # fill and crop to exactly 200 x 200
            "large": ("1200x1200>", "webp"),  # shrink to fit, as WebP
        },
    )

    def __str__(self) -> str:
        return self.title
