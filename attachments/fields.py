"""``AttachmentField``: an image file whose styles are made in the background.

The column holds the original's name. A companion column, ``<name>_state``,
says where that original is: ``processing`` or ``failed`` (still in the staging
storage, styles not made yet) or ``ready`` (original and styles published in
the field's storage). Reading the state therefore costs no query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, cast, overload

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import Storage
from django.db import models, router, transaction
from django.db.models import F
from django.db.models.fields.files import FieldFile, FileDescriptor
from django.db.models.signals import post_save, pre_delete
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _

from . import storage, versions
from .conf import conf
from .exceptions import InvalidImage, StagingFailed
from .models import Job
from .styles import Style, StyleError, parse_styles
from .validation import validate_upload
from .widgets import AdminAttachmentWidget, AttachmentWidget

PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
STATES = (PROCESSING, READY, FAILED)

_STATE_SUFFIX = "_state"
_PENDING = "_attachments_pending"


@dataclass(frozen=True)
class StyleFile:
    """One style of an attachment: its name in the final storage and its URL."""

    name: str
    storage: Storage
    url: str

    def __str__(self) -> str:
        return self.url


class StyleFiles(Mapping[str, StyleFile]):
    """The styles of one attachment, by style name (``{{ image.styles.thumb.url }}``)."""

    def __init__(self, file: AttachmentFieldFile) -> None:
        self._file = file

    def __getitem__(self, key: str) -> StyleFile:
        style = self._file.field.styles[key]
        name = storage.style_name(self._file.name, style) if self._file.name else ""
        return StyleFile(name=name, storage=self._file.storage, url=self._file.style_url(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._file.field.styles)

    def __len__(self) -> int:
        return len(self._file.field.styles)


@dataclass
class _Upload:
    """A staged upload on its way into the record, from the file's save to post_save."""

    source: str
    # Set by the record's save once the upload has replaced the record's version.
    replaced: versions.Replaced | None = None
    # The record's row was gone: the save inserts it again, as Django does.
    reinserted: bool = False


# pre_save's verdict for a save that inserts the row after all: write the real values.
_REINSERT = "reinsert"


class AttachmentFieldFile(FieldFile):
    field: AttachmentField

    @property
    def state(self) -> str:
        """``processing``, ``ready``, ``failed``, or ``""`` when there is no file."""
        return getattr(self.instance, self.field.state_attname) if self.name else ""

    @property
    def processing(self) -> bool:
        return self.state == PROCESSING

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def url(self) -> str:
        """The original's URL once published, a placeholder until then (or for good if failed)."""
        self._existing_name()
        if self.ready:
            return super().url
        return self.field.failed_placeholder_url if self.failed else self.field.placeholder_url

    @property
    def styles(self) -> StyleFiles:
        return StyleFiles(self)

    def style_url(self, style: str) -> str:
        """Return the URL of ``style``, or a placeholder while it is not made (or failed)."""
        name = self._existing_name()
        if not self.ready:
            return self.url
        return self.storage.url(storage.style_name(name, self.field.styles[style]))

    # FieldFile.open takes only a mode, whatever File.open's stub says.
    def open(self, mode: str = "rb") -> AttachmentFieldFile:  # type: ignore[override]
        """Open the original, from the staging storage until it is published."""
        name = self._existing_name()
        if self.ready or getattr(self, "_file", None) is not None:
            return super().open(mode)
        self.file = storage.staging_storage().open(name, mode)
        return self

    def _existing_name(self) -> str:
        """Return the original's name; raise ``ValueError`` as ``FieldFile`` does without one."""
        if not self.name:
            raise ValueError(f"The '{self.field.name}' attribute has no file associated with it.")
        return self.name

    def save(self, name: str, content: File[Any], save: bool = True) -> None:
        """Stage a new upload and mark the attachment as processing.

        The job is enqueued when the record is saved, in the same transaction.
        """
        info = getattr(content, "image_info", None) or validate_upload(content)
        filename = storage.upload_filename(name, info.format)
        new_name = storage.unique_name(self.field.generate_filename(self.instance, filename))
        if hasattr(content, "seek"):
            content.seek(0)
        staging = storage.staging_storage()
        try:
            self.name = staging.save(new_name, content)
        except OSError as exc:
            # A full disk leaves a partial file behind: remove it, keep nothing half-written.
            with contextlib.suppress(OSError):
                storage.delete_all(staging, [new_name])
            raise StagingFailed(
                _("The upload could not be stored: %(reason)s. Please try again later."),
                params={"reason": exc.strerror or exc},
            ) from exc
        self._committed = True
        setattr(self.instance, self.field.attname, self.name)
        setattr(self.instance, self.field.state_attname, PROCESSING)
        self.instance.__dict__.setdefault(_PENDING, {})[self.field.name] = _Upload(self.name)
        if save:
            self.instance.save()

    def delete(self, save: bool = True) -> None:
        """Empty the field; its files are deleted once the record's save commits.

        Until then (and for good if the record is never saved, or its
        transaction rolls back) the record keeps pointing at files that exist.
        """
        if not self.name:
            return
        if hasattr(self, "_file"):
            self.close()
            del self.file
        self.name = None
        setattr(self.instance, self.field.attname, self.name)
        self._committed = False
        if save:
            self.instance.save()


# The stubs' CharField is generic, Django's is not subscriptable at run time.
class AttachmentStateField(models.CharField):  # type: ignore[type-arg]
    """The companion column of an ``AttachmentField``; added by it, never declared by hand."""

    _defaults: dict[str, Any] = {
        "max_length": 10,
        "blank": True,
        "default": "",
        "editable": False,
        "choices": [(state, state) for state in STATES],
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**self._defaults, **kwargs})

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        for key, value in self._defaults.items():
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        # In migrations the attachment field may have added its companion already.
        if not any(field.name == name for field in cls._meta.local_fields):
            super().contribute_to_class(cls, name, private_only=private_only)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # Staging the upload decides the state; fields are saved in declaration
        # order, so make sure it has happened whichever column comes first. An
        # UPDATE keeps the state the database holds, as it keeps the name.
        attachment = cast(
            AttachmentField, model_instance._meta.get_field(self.name.removesuffix(_STATE_SUFFIX))
        )
        if isinstance(attachment.pre_save(model_instance, add), F):
            return F(self.attname)
        return super().pre_save(model_instance, add)


class AttachmentFormField(forms.FileField):
    """A file input that accepts only images this site can process, judged by content.

    Its errors' codes, for ``error_messages``: ``empty``, ``file_too_large``
    (``%(size)s``, ``%(max)s``), ``too_many_pixels`` (``%(max)s``, and for an
    image within Pillow's own bound ``%(width)s``, ``%(height)s``, ``%(pixels)s``)
    and ``invalid_image`` (``%(formats)s``), besides ``FileField``'s own.
    """

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

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 255:
            del kwargs["max_length"]
        options = {
            "styles": (self.style_declaration, {}),
            "process_in_background": (self.process_in_background, True),
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
        if not any(field.name == self.state_attname for field in cls._meta.local_fields):
            AttachmentStateField().contribute_to_class(cls, self.state_attname)
        if not cls._meta.abstract:
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
        """Whether uploads get a row in the job table (else processed in the request, or a task)."""
        return self.process_in_background and conf.BACKEND == "database"

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """Stage a new upload, then let only uploads and clears change the record's version.

        Updating a record, the version it points at changes under its row lock
        (``versions``); the UPDATE itself keeps what the database holds, so a
        save that read the record before a worker or another save changed it
        never writes an older version back.
        """
        file = super().pre_save(model_instance, add)
        pending = model_instance.__dict__.setdefault(_PENDING, {})
        entry = pending.get(self.name)
        if add:
            vanished = not model_instance._state.adding and model_instance.pk is not None
            if vanished and not (isinstance(entry, _Upload) and entry.reinserted):
                # A loaded record whose row was deleted while it was being saved:
                # Django inserts it again, but its files went with the deletion.
                pending.pop(self.name, None)
                setattr(model_instance, self.attname, None)
                file = getattr(model_instance, self.attname)
            if not file:
                setattr(model_instance, self.state_attname, "")
            return file
        using = model_instance._state.db or router.db_for_write(type(model_instance))
        if isinstance(entry, _Upload):
            if entry.replaced is None and not entry.reinserted:
                entry.replaced = versions.replace(self, model_instance.pk, entry.source, using)
                entry.reinserted = entry.replaced is None
            if entry.reinserted:
                return file
        elif entry == _REINSERT:
            return file
        elif not file and getattr(model_instance, self.state_attname):
            # Emptied since it was loaded (a form's "clear" box, delete(), or
            # assigning None): the state still tells.
            setattr(model_instance, self.state_attname, "")
            if not versions.clear(self, model_instance.pk, using):
                pending[self.name] = _REINSERT
                return file
        return F(self.attname)

    def enqueue(
        self,
        object_id: object,
        source: str,
        previous: tuple[str, ...] = (),
        *,
        new_record: bool = False,
        using: str | None = None,
    ) -> Job | None:
        """Queue the job of an upload the record points at; None when it has moved on."""
        return versions.enqueue(
            self, object_id, source, previous, new_record=new_record, using=using
        )

    def _after_save(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        upload = instance.__dict__.get(_PENDING, {}).pop(self.name, None)
        if not isinstance(upload, _Upload) or (upload.replaced and upload.replaced.job):
            return  # nothing new, or queued with the record's version already
        using = kwargs.get("using") or router.db_for_write(sender)
        replaced = upload.replaced.previous if upload.replaced else ""
        previous = (replaced,) if replaced else ()
        if self.queued:  # a record inserted now: its job follows its commit
            self.enqueue(instance.pk, upload.source, new_record=True, using=using)
            return
        from .processing import run_after_commit

        if not self.process_in_background or conf.BACKEND == "immediate":
            run_after_commit(self, instance, upload.source, previous, using=using)
            return
        from . import tasks

        pk = instance.pk
        transaction.on_commit(lambda: tasks.send(self, pk, upload.source, previous), using=using)

    def _before_delete(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        # Inside the deletion's transaction: what the row holds now is what goes,
        # whatever this instance read earlier.
        using = kwargs.get("using") or router.db_for_write(sender)
        name = versions.lock(self, instance.pk, using)
        if name is not None:
            versions.forget(self, instance.pk, name, using)
