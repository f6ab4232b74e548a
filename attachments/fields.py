"""``AttachmentField``: an image file whose styles are made in the background.

The column holds the original's name. A companion column, ``<name>_state``,
says where that original is: ``processing`` or ``failed`` (still in the staging
storage, styles not made yet) or ``ready`` (original and styles published in
the field's storage). A second one, ``<name>_styles``, says what is made for
that original: its size, and per style the fingerprint of the declaration it
was made from (see ``plan``). Reading either costs no query.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, cast, overload

from django import forms
from django.apps import apps
from django.contrib.admin.widgets import AdminFileWidget
from django.core import checks
from django.db import models, router
from django.db.models import F
from django.db.models.fields.files import FileDescriptor
from django.db.models.signals import post_save, pre_delete
from django.templatetags.static import static

from . import imaging, plan, processing, renditions, targets, versions
from .conf import conf
from .files import FOCUS, PENDING, AttachmentFieldFile, StyleFile, StyleFiles, Upload
from .forms import AttachmentFormField
from .geometry import Point
from .styles import Style, StyleError, parse_styles
from .targets import STATES
from .widgets import AdminAttachmentWidget, AttachmentWidget

# The file's classes live in files.py, the form field in forms.py; this has always been
# where users import them.
__all__ = [
    "AttachmentField",
    "AttachmentFieldFile",
    "AttachmentFormField",
    "AttachmentStateField",
    "AttachmentStylesField",
    "StyleFile",
    "StyleFiles",
]

_STATE_SUFFIX = "_state"
_STYLES_SUFFIX = "_styles"
FALLBACKS = ("nearest", "original")


# pre_save's verdict for a save that inserts the row after all: write the real values.
_REINSERT = "reinsert"


class _Companion:
    """A column the attachment field adds beside its own; never declared by hand."""

    suffix: str
    _defaults: dict[str, Any]
    if TYPE_CHECKING:  # given by the Field this is mixed into
        name: str
        attname: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**self._defaults, **kwargs})

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        for key, value in self._defaults.items():
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        # In migrations the attachment field may have added its companion already.
        if not any(field.name == name for field in cls._meta.local_fields):
            super().contribute_to_class(cls, name, private_only=private_only)  # type: ignore[misc]

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # Staging the upload decides the value; fields are saved in declaration
        # order, so make sure it has happened whichever column comes first. An
        # UPDATE keeps what the database holds, as it keeps the name.
        attachment = cast(
            AttachmentField, model_instance._meta.get_field(self.name.removesuffix(self.suffix))
        )
        if isinstance(attachment.pre_save(model_instance, add), F):
            return F(self.attname)
        return super().pre_save(model_instance, add)  # type: ignore[misc]


# The stubs' CharField and JSONField are generic, Django's are not subscriptable at run time.
class AttachmentStateField(_Companion, models.CharField):  # type: ignore[type-arg]
    """``<name>_state``: where the record's original is (see the module docstring)."""

    suffix = _STATE_SUFFIX
    _defaults: dict[str, Any] = {
        "max_length": 10,
        "blank": True,
        "default": "",
        "editable": False,
        "choices": [(state, state) for state in STATES],
    }


class AttachmentStylesField(_Companion, models.JSONField):
    """``<name>_styles``: the original's size and what is made of each style (see ``plan``)."""

    suffix = _STYLES_SUFFIX
    _defaults: dict[str, Any] = {"blank": True, "default": dict, "editable": False}


class AttachmentField(models.FileField):
    """An image whose styles are made by a worker (or in the request) after upload."""

    attr_class = AttachmentFieldFile

    if TYPE_CHECKING:
        # What ``Model.field`` is to type checkers, as django-stubs says for FileField.
        @overload  # type: ignore[override]
        def __get__(self, instance: None, owner: Any) -> FileDescriptor: ...
        @overload
        def __get__(self, instance: models.Model, owner: Any) -> AttachmentFieldFile: ...
        @overload
        def __get__(self, instance: Any, owner: Any) -> Self: ...
        def __get__(self, instance: Any, owner: Any) -> Any: ...

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        *,
        styles: Mapping[str, Any] | None = None,
        process_in_background: bool = True,
        processing_url: str | None = None,
        failed_url: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        only_process: Sequence[str] = (),
        fallback: str = "nearest",
        width_field: str | None = None,
        height_field: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.style_declaration = dict(styles or {})
        try:
            self.styles: dict[str, Style] = parse_styles(self.style_declaration)
            self.style_error = ""
        except StyleError as exc:
            # Reported by check() so that a typo is a clear error at startup.
            self.styles, self.style_error = {}, str(exc)
        self.process_in_background = process_in_background
        self.only_process = tuple(only_process)
        self.fallback = fallback
        self.width_field, self.height_field = width_field, height_field
        self.processing_url = processing_url
        self.failed_url = failed_url
        self.queue = queue
        self.priority = priority
        self.max_attempts = max_attempts
        kwargs.setdefault("max_length", 255)
        super().__init__(verbose_name, name, **kwargs)

    @property
    def state_attname(self) -> str:
        return self.name + _STATE_SUFFIX

    @property
    def styles_attname(self) -> str:
        return self.name + _STYLES_SUFFIX

    def version_columns(self, size: tuple[int, int] | None) -> dict[str, Any]:
        """The record's columns besides name and state for a new version of ``size``.

        Nothing is made of it yet. ``size=None`` is the emptied field.
        """
        columns: dict[str, Any] = {self.styles_attname: {plan.ORIGINAL: list(size)} if size else {}}
        if self.width_field:
            columns[self.width_field] = size[0] if size else None
        if self.height_field:
            columns[self.height_field] = size[1] if size else None
        return columns

    def due(self, state: Any, *, missing_only: bool = False, only: Sequence[str] = ()) -> list[str]:
        """Return the styles (``only`` those) not made from their current declaration."""
        styles = [self.styles[name] for name in only] if only else self.styles.values()
        return plan.due(styles, state, renditions.qualities(), missing_only=missing_only)

    @property
    def field_id(self) -> str:
        """``app_label.model_name.field_name``: how jobs refer to this field."""
        return f"{self.model._meta.label_lower}.{self.name}"

    @property
    def queue_name(self) -> str:
        """The queue this field's jobs go to."""
        return self.queue or conf.QUEUE

    @property
    def placeholder_url(self) -> str:
        return self.processing_url or conf.PROCESSING_URL or static("attachments/processing.svg")

    @property
    def failed_placeholder_url(self) -> str:
        """What a failed attachment shows for good, unlike the placeholder of one on its way."""
        return self.failed_url or conf.FAILED_URL or static("attachments/failed.svg")

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.style_error:
            errors.append(checks.Error(self.style_error, obj=self, id="attachments.E001"))
        errors += self._check_making()
        errors += self._check_styles()
        if not isinstance(self.process_in_background, bool):
            errors.append(
                checks.Error(
                    "process_in_background must be True or False.", obj=self, id="attachments.E002"
                )
            )
        if "CacheControl" not in getattr(self.storage, "object_parameters", {"CacheControl": ""}):
            errors.append(
                checks.Warning(
                    "The field's S3 storage sets no Cache-Control, so browsers and CDNs "
                    "revalidate images whose names never change.",
                    hint="Add 'object_parameters': {'CacheControl': "
                    "'public, max-age=31536000, immutable'} to the storage's OPTIONS.",
                    obj=self,
                    id="attachments.W001",
                )
            )
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            errors.append(
                checks.Error(
                    "max_attempts must be a positive integer.", obj=self, id="attachments.E003"
                )
            )
        return errors

    def _check_styles(self) -> list[checks.CheckMessage]:
        """Checks of what the styles need outside themselves: processors, encoders."""
        errors: list[checks.CheckMessage] = []
        for style in self.styles.values():
            formats = style.formats or ((style.format,) if style.format else ())
            unable = [fmt for fmt in formats if not imaging.encodes(fmt)]
            if unable:
                errors.append(
                    checks.Error(
                        f"Style {style.name!r} is to be written as {', '.join(unable)}, which "
                        "the installed Pillow cannot encode.",
                        hint="AVIF needs Pillow 11.2 or later built with libavif (the wheels "
                        "on PyPI are); or choose another format.",
                        obj=self,
                        id="attachments.E181",
                    )
                )
            for processor in style.processors:
                try:
                    processor.resolve()
                except StyleError as exc:
                    errors.append(
                        checks.Error(
                            f"Style {style.name!r}: {exc}",
                            hint="Name a callable by its full dotted path, e.g. "
                            "'attachments.processors.grayscale'.",
                            obj=self,
                            id="attachments.E180",
                        )
                    )
        return errors

    def _check_making(self) -> list[checks.CheckMessage]:
        """Checks of what makes styles when: only_process, fallback, dimension fields."""
        errors: list[checks.CheckMessage] = []
        unknown = [name for name in self.only_process if name not in self.styles]
        if unknown and not self.style_error:
            errors.append(
                checks.Error(
                    f"only_process names styles the field does not declare: {unknown}.",
                    hint=f"Declared styles: {sorted(self.styles)}.",
                    obj=self,
                    id="attachments.E170",
                )
            )
        if self.fallback not in FALLBACKS:
            errors.append(
                checks.Error(
                    f"fallback must be one of {list(FALLBACKS)}, not {self.fallback!r}.",
                    obj=self,
                    id="attachments.E171",
                )
            )
        for option in ("width_field", "height_field"):
            name = getattr(self, option)
            fields = {field.name for field in self.model._meta.get_fields()}
            if name and name not in fields:
                errors.append(
                    checks.Error(
                        f"{option} names {name!r}, which is not a field of "
                        f"{self.model._meta.label}.",
                        hint="Declare it, e.g. models.PositiveIntegerField(null=True, "
                        "editable=False).",
                        obj=self,
                        id="attachments.E172",
                    )
                )
        return errors

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        # Styles, only_process and fallback change no column: leaving them out
        # keeps editing them from writing a migration. What a change of style
        # needs is made by reprocess_attachments, told by check --database.
        name, _path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 255:
            del kwargs["max_length"]
        options = {
            "process_in_background": (self.process_in_background, True),
            "width_field": (self.width_field, None),
            "height_field": (self.height_field, None),
            "processing_url": (self.processing_url, None),
            "failed_url": (self.failed_url, None),
            "queue": (self.queue, None),
            "priority": (self.priority, 0),
            "max_attempts": (self.max_attempts, None),
        }
        kwargs.update({k: value for k, (value, default) in options.items() if value != default})
        return name, "attachments.fields.AttachmentField", args, kwargs

    # FileField's stub takes **kwargs, as Django does, Field's takes private_only.
    def contribute_to_class(  # type: ignore[override]
        self, cls: type[models.Model], name: str, **kwargs: Any
    ) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        # Models that migrations build have exactly the columns their operations
        # gave them: a companion added later arrives there by its own AddField.
        historical = cls._meta.apps is not apps and cls.__module__ == "__fake__"
        for companion, attname in (
            (AttachmentStateField, self.state_attname),
            (AttachmentStylesField, self.styles_attname),
        ):
            if not historical and not any(f.name == attname for f in cls._meta.local_fields):
                companion().contribute_to_class(cls, attname)
        if not cls._meta.abstract:
            targets.register(self)
            versions.commit_once(cls, _prepare_save)
            uid = f"attachments:{cls._meta.label_lower}.{name}"
            post_save.connect(self._after_save, sender=cls, weak=False, dispatch_uid=uid)
            pre_delete.connect(self._before_delete, sender=cls, weak=False, dispatch_uid=uid)

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        # The admin hands every FileField its AdminFileWidget; keep its look, add the preview.
        widget = kwargs.get("widget")
        if widget is AdminFileWidget or isinstance(widget, AdminFileWidget):
            kwargs["widget"] = AdminAttachmentWidget
        return super().formfield(
            **{"form_class": AttachmentFormField, "widget": AttachmentWidget, **kwargs}
        )

    @property
    def queued(self) -> bool:
        """Whether uploads get a row in the job table (else processed in the request).

        With ``BACKEND="tasks"`` too: the job table stays the ledger, and the
        task backend only wakes a runner for the job (``transport.wake``).
        """
        return self.process_in_background and conf.BACKEND in ("database", "tasks")

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """Stage a new upload, then let only uploads and clears change the record's version.

        Updating a record, the version it points at changes under its row lock
        (``versions``); the UPDATE itself keeps what the database holds, so a
        save that read the record before a worker or another save changed it
        never writes an older version back.
        """
        file = super().pre_save(model_instance, add)
        pending = model_instance.__dict__.setdefault(PENDING, {})
        entry = pending.get(self.name)
        # Set on the instance: an INSERT writes it with the rest, an UPDATE below.
        focus = model_instance.__dict__.get(FOCUS, {})
        refocus, point = self.name in focus, focus.pop(self.name, None)
        if add:
            vanished = not model_instance._state.adding and model_instance.pk is not None
            if vanished and not (isinstance(entry, Upload) and entry.reinserted):
                # A loaded record whose row was deleted while it was being saved:
                # Django inserts it again, but its files went with the deletion.
                pending.pop(self.name, None)
                setattr(model_instance, self.attname, None)
                file = getattr(model_instance, self.attname)
            if not file:
                setattr(model_instance, self.state_attname, "")
            return file
        using = model_instance._state.db or router.db_for_write(type(model_instance))
        if isinstance(entry, Upload):
            if entry.replaced is None and not entry.reinserted:
                entry.replaced = versions.replace(
                    self, model_instance.pk, entry.source, using, entry.columns
                )
                entry.reinserted = entry.replaced is None
            if entry.reinserted:
                return file
        elif entry == _REINSERT:
            return file
        elif not file and getattr(model_instance, self.state_attname):
            # Emptied since it was loaded (a form's "clear" box, delete(), or
            # assigning None): the state still tells.
            setattr(model_instance, self.state_attname, "")
            for attname, value in self.version_columns(None).items():
                setattr(model_instance, attname, value)
            if not versions.clear(self, model_instance.pk, using):
                pending[self.name] = _REINSERT
                return file
        elif refocus and file:
            self._refocus(model_instance, file.name, point, using)
        return F(self.attname)

    def stage(self, instance: models.Model) -> bool:
        """Stage the instance's new upload, if any; return whether its save changes the version.

        As the save's ``pre_save`` would, which then finds it staged. A new
        focal point counts: its save stores it under the row lock too.
        """
        file = getattr(instance, self.attname)
        if file and not file._committed:
            file.save(file.name, file.file, save=False)
        entry = instance.__dict__.get(PENDING, {}).get(self.name)
        if isinstance(entry, Upload) or self.name in instance.__dict__.get(FOCUS, {}):
            return True
        # Emptied since it was loaded: pre_save clears the version.
        return not file and bool(getattr(instance, self.state_attname))

    def _refocus(self, instance: models.Model, name: str, point: Point | None, using: str) -> None:
        """Store the focal point of ``name``; remake what it makes due (``versions.refocus``)."""
        refocused = versions.refocus(self, instance.pk, name, point, using)
        if refocused is None:
            return  # the row is gone, or shows a newer upload the point is not of
        setattr(instance, self.styles_attname, refocused.styles)
        if refocused.source and not self.queued:
            processing.run_after_commit(self, instance, refocused.source, (), using=using)

    def _after_save(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        upload = instance.__dict__.get(PENDING, {}).pop(self.name, None)
        if not isinstance(upload, Upload) or (upload.replaced and upload.replaced.job):
            return  # nothing new, or queued with the record's version already
        using = kwargs.get("using") or router.db_for_write(sender)
        replaced = upload.replaced.previous if upload.replaced else ""
        previous = (replaced,) if replaced else ()
        if self.queued:  # a record inserted now: its job follows its commit
            versions.enqueue(self, instance.pk, upload.source, new_record=True, using=using)
            return
        processing.run_after_commit(self, instance, upload.source, previous, using=using)

    def _before_delete(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        # Inside the deletion's transaction: what the row holds now is what goes,
        # whatever this instance read earlier.
        using = kwargs.get("using") or router.db_for_write(sender)
        name = versions.lock(self, instance.pk, using)
        if name is not None:
            versions.forget(self, instance.pk, name, using)


def _prepare_save(instance: models.Model, update_fields: Collection[str] | None) -> bool:
    """Stage the save's uploads; return whether it changes an attachment (``commit_once``)."""
    changes = False
    for field in instance._meta.concrete_fields:
        if isinstance(field, AttachmentField) and (
            update_fields is None or field.name in update_fields
        ):
            changes = field.stage(instance) or changes
    return changes
