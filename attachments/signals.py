"""Signals sent when an attachment version is published or fails for good."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with sender=model class, instance=None (the worker does not load the
# record), object_id, field (the AttachmentField) and name (the original's name).
attachment_processed = Signal()
# Same arguments plus error (the exception) after the last attempt.
attachment_failed = Signal()
