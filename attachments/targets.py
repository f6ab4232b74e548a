"""What a record's attachment state can be, and the attachment fields by their id.

Below both the field and the job processing: a job, a status token or a command
names a field by ``app_label.model_name.field`` and finds it here, without
importing the module that declares it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .fields import AttachmentField

__all__ = ["FAILED", "PROCESSING", "READY", "STATES", "fields", "register", "resolve"]

PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
STATES = (PROCESSING, READY, FAILED)

_FIELDS: dict[str, AttachmentField] = {}


def register(field: AttachmentField) -> None:
    """Make ``field`` of a concrete, installed model findable by its id."""
    # Migrations build historical models in registries of their own: not ours to find.
    if field.model._meta.apps is apps and not field.model._meta.abstract:
        _FIELDS[field.field_id] = field


def resolve(target: str) -> AttachmentField:
    """Return the field ``target`` (``app_label.model_name.field``) names."""
    field = _FIELDS.get(target)
    if field is None or not _installed(field):
        raise ConfigurationError(
            f"No attachment field {target!r}; expected app_label.model_name.field, "
            f"one of: {', '.join(f.field_id for f in fields()) or 'none'}."
        )
    return field


def fields() -> list[AttachmentField]:
    """Every attachment field of the installed models, by id."""
    return [_FIELDS[target] for target in sorted(_FIELDS) if _installed(_FIELDS[target])]


def _installed(field: AttachmentField) -> bool:
    # A model can leave the registry again (tests build and drop models).
    opts = field.model._meta
    try:
        return apps.get_registered_model(opts.app_label, str(opts.model_name)) is field.model
    except LookupError:
        return False
