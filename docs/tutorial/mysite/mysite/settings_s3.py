"""Step 2 of the tutorial: publish images to an S3 bucket instead of MEDIA_ROOT."""

import os

from .settings import *  # noqa: F403

STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["ATTACHMENTS_BUCKET"],
            # Names never change (every upload gets a new one): let browsers keep them.
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            # A private bucket: URLs are signed and expire.
            "querystring_auth": True,
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
