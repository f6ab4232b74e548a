"""``AttachmentFormField``: the form side of ``AttachmentField``.

What an upload must pass before the record is saved (read from its content, by
``validation``), and the focal point the attachment widgets post beside the file.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import plan
from .exceptions import InvalidImage
from .files import AttachmentFieldFile
from .geometry import Point
from .validation import validate_upload
from .widgets import Posted

__all__ = ["AttachmentFormField"]


class AttachmentFormField(forms.FileField):
    """A file input that accepts only images this site can process, judged by content.

    Its errors' codes, for ``error_messages``: ``empty``, ``file_too_large``
    (``%(size)s``, ``%(max)s``), ``too_many_pixels`` (``%(max)s``, and for an
    image within Pillow's own bound ``%(width)s``, ``%(height)s``, ``%(pixels)s``)
    and ``invalid_image`` (``%(formats)s``), besides ``FileField``'s own, and
    ``invalid_focus`` for a focal point that is not ``x,y`` within 0..1.

    With the attachment widgets, a form that keeps the file also posts its
    focal point (the widget's hidden ``<name>-focus`` input): when that moved,
    the cleaned value is the record's own file with the new ``focus`` set, so
    the record's save (``form.save()``) stores it.
    """

    default_error_messages = {
        "invalid_focus": _("Choose the focal point by clicking on the image."),
    }

    def clean(self, data: Any, initial: Any = None) -> Any:
        posted = data.focus if isinstance(data, Posted) else None
        value = super().clean(data.upload if isinstance(data, Posted) else data, initial)
        if posted is None or value is not initial or not isinstance(value, AttachmentFieldFile):
            return value  # no focal point input, a new upload, or cleared
        point = self._focus(posted, value)
        if point != value.focus:
            value.focus = point
        return value

    def _focus(self, posted: str, file: AttachmentFieldFile) -> Point | None:
        if not posted:
            return file.focus  # nothing clicked
        try:
            return plan.to_focus(posted.split(","))
        except ValueError:
            raise ValidationError(
                self.error_messages["invalid_focus"], code="invalid_focus"
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        return super().bound_data(data.upload if isinstance(data, Posted) else data, initial)

    def has_changed(self, initial: Any, data: Any) -> bool:
        if not isinstance(data, Posted):
            return super().has_changed(initial, data)
        if super().has_changed(initial, data.upload):
            return True
        if not data.focus or not isinstance(initial, AttachmentFieldFile) or not initial:
            return False
        try:
            return plan.to_focus(data.focus.split(",")) != initial.focus
        except ValueError:
            return True  # let clean() say what is wrong

    def to_python(self, data: Any) -> Any:
        file = super().to_python(data)
        if file is None:
            return None
        try:
            # Carried to AttachmentFieldFile.save, so the header is read once.
            file.image_info = validate_upload(  # type: ignore[attr-defined]
                file, size=getattr(file, "size", None)
            )
        except InvalidImage as exc:
            message = self.error_messages.get(exc.code, exc.message)
            raise ValidationError(message, code=exc.code, params=exc.params) from exc
        return file
