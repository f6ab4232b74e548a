"""What a page may learn about an attachment while it waits for it: its state and URLs.

Pages get a signed, expiring token naming one attachment (field and primary
key), never a guessable id, so the status endpoint tells nothing about records
the page was not already showing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse

from . import pictures, plan, previews
from .conf import conf
from .exceptions import AttachmentsError
from .targets import PROCESSING, resolve

if TYPE_CHECKING:
    from .files import AttachmentFieldFile

_SALT = "attachments.status"


class BadToken(AttachmentsError):
    """A status token that is malformed, tampered with, expired or names no attachment."""


def token(file: AttachmentFieldFile) -> str:
    """Return the status token of ``file``'s attachment."""
    return signing.dumps([file.field.field_id, str(file.instance.pk)], salt=_SALT, compress=True)


def status_url(file: AttachmentFieldFile) -> str | None:
    """Return the URL pages poll for ``file``, or None when the app's URLs are not installed."""
    try:
        return reverse("attachments:status", args=[token(file)])
    except NoReverseMatch:
        return None


def img_attrs(file: Any, style: str) -> dict[str, Any]:
    """Return the ``<img>`` attributes of one style: src, state, known size, polling hooks."""
    # The state lets a page style each one (img[data-attachment-state="failed"]).
    attrs: dict[str, Any] = {"src": file.style_url(style), "data-attachment-state": file.state}
    size = file.style_size(style)  # known from the header, made or not
    if size:
        attrs["width"], attrs["height"] = size
    # Only an attachment on its way is polled: a failed one will not change by itself.
    if file.processing:
        preview = plan.preview(file.made)
        if preview:
            # Blurred at the style's size in place of the generic placeholder.
            attrs["src"] = preview
            attrs["style"] = previews.img_style(*(size or (None, None)))
            attrs["data-attachment-blurred"] = ""
        url = status_url(file)
        if url:
            attrs.update({"data-attachment-status": url, "data-attachment-style": style})
    return attrs


def read(value: str) -> dict[str, Any]:
    """Return ``{"state": ..., "urls": {style: url}}`` for a token, with one query.

    While processing, ``"preview"`` is the preview's ``data:`` URI once there is one.
    A field with responsive styles adds ``"pictures": {style: {"sources": [...],
    "srcset": ...}}`` for those made (see ``pictures``).
    """
    try:
        field_id, raw_pk = signing.loads(value, salt=_SALT, max_age=conf.STATUS_TOKEN_MAX_AGE)
        field = resolve(field_id)
        if not isinstance(raw_pk, str):
            raise TypeError(f"A primary key is signed as a string, not {raw_pk!r}.")
        # Signed by this project, yet maybe not for this model's pk (a token
        # from before a pk's type changed): unreadable is unknown, not a crash.
        pk = field.model._meta.pk.to_python(raw_pk)
    except (signing.BadSignature, ValueError, TypeError, ValidationError, AttachmentsError) as exc:
        raise BadToken(str(exc)) from exc
    columns = (field.attname, field.state_attname, field.styles_attname)
    row = field.model._base_manager.filter(pk=pk).values_list(*columns).first()
    if row is None or not row[0]:
        raise BadToken("The attachment no longer exists.")
    # An unsaved instance carries name, state and styles: building URLs needs nothing else.
    instance = field.model(pk=pk, **dict(zip(columns, row, strict=True)))
    file = getattr(instance, field.attname)
    payload = {"state": file.state, "urls": {name: file.style_url(name) for name in field.styles}}
    preview = plan.preview(file.made) if file.state == PROCESSING else None
    if preview:
        payload["preview"] = preview
    responsive = [name for name, style in field.styles.items() if style.responsive]
    if responsive:  # a <picture> placeholder fills in its sources from these
        made = {name: pictures.picture(file, name) for name in responsive}
        payload["pictures"] = {name: p.to_json() for name, p in made.items() if p is not None}
    return payload
