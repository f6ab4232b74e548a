"""``AttachmentField``: an image file whose styles are made in the background.

The column holds the original's name. A companion column, ``<name>_state``,
says where that original is: ``processing`` or ``failed`` (still in the staging
storage, styles not made yet) or ``ready`` (original and styles published in
the field's storage). Reading the state therefore costs no query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.core import checks
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import Storage
from django.db import models, router, transaction
from django.db.models.fields.files import FieldFile
from django.db.models.signals import post_delete, post_save
from django.templatetags.static import static

from . import queue, storage
from .conf import conf
from .exceptions import InvalidImage, StagingFailed
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


@dataclass(frozen=True)
class _Upload:
    source: str
    previous: tuple[str, ...]


@dataclass(frozen=True)
class _Removal:
    name: str  # the version the database held when the field was emptied


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
        """The original's URL once published, the placeholder until then."""
        self._require_file()
        return super().url if self.ready else self.field.placeholder_url

    @property
    def styles(self) -> StyleFiles:
        return StyleFiles(self)

    def style_url(self, style: str) -> str:
        """Return the URL of ``style``, or the placeholder while it is not made yet."""
        self._require_file()
        if not self.ready:
            return self.field.placeholder_url
        return self.storage.url(storage.style_name(self.name, self.field.styles[style]))

    def open(self, mode: str = "rb") -> AttachmentFieldFile:
        """Open the original, from the staging storage until it is published."""
        self._require_file()
        if self.ready or getattr(self, "_file", None) is not None:
            return super().open(mode)
        self.file = storage.staging_storage().open(self.name, mode)
        return self

    def save(self, name: str, content: File, save: bool = True) -> None:
        """Stage a new upload and mark the attachment as processing.

        The job is enqueued when the record is saved, in the same transaction.
        """
        info = getattr(content, "image_info", None) or validate_upload(content)
        filename = storage.upload_filename(name, info.format)
        new_name = storage.unique_name(self.field.generate_filename(self.instance, filename))
        previous = self.field.current_name(self.instance)
        if hasattr(content, "seek"):
            content.seek(0)
        staging = storage.staging_storage()
        try:
            self.name = staging.save(new_name, content)
        except OSError as exc:
            # A full disk leaves a partial file behind: remove it, keep nothing half-written.
            with contextlib.suppress(OSError):
                staging.delete(new_name)
            raise StagingFailed(
                f"The upload could not be stored: {exc.strerror or exc}. Please try again later."
            ) from exc
        self._committed = True
        setattr(self.instance, self.field.attname, self.name)
        setattr(self.instance, self.field.state_attname, PROCESSING)
        self.instance.__dict__.setdefault(_PENDING, {})[self.field.name] = _Upload(
            source=self.name, previous=(previous,) if previous else ()
        )
        if save:
            self.instance.save()

    save.alters_data = True

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

    delete.alters_data = True


class AttachmentStateField(models.CharField):
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

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        for key, value in self._defaults.items():
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        # In migrations the attachment field may have added its companion already.
        if not any(field.name == name for field in cls._meta.local_fields):
            super().contribute_to_class(cls, name, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # Staging the upload decides the state; fields are saved in declaration
        # order, so make sure it has happened whichever column comes first.
        attachment = model_instance._meta.get_field(self.name.removesuffix(_STATE_SUFFIX))
        attachment.pre_save(model_instance, add)
        return super().pre_save(model_instance, add)


class AttachmentFormField(forms.FileField):
    """A file input that accepts only images this site can process, judged by content."""

    def to_python(self, data: Any) -> Any:
        file = super().to_python(data)
        if file is None:
            return None
        try:
            file.image_info = validate_upload(file, size=getattr(file, "size", None))
        except InvalidImage as exc:
            raise ValidationError(str(exc), code="invalid_image") from exc
        return file


class AttachmentField(models.FileField):
    """An image whose styles are made by a worker (or in the request) after upload."""

    attr_class = AttachmentFieldFile

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        *,
        styles: Mapping[str, Any] | None = None,
        process_in_background: bool = True,
        processing_url: str | None = None,
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

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 255:
            del kwargs["max_length"]
        options = {
            "styles": (self.style_declaration, {}),
            "process_in_background": (self.process_in_background, True),
            "processing_url": (self.processing_url, None),
            "queue": (self.queue, None),
            "priority": (self.priority, 0),
            "max_attempts": (self.max_attempts, None),
        }
        kwargs.update({k: value for k, (value, default) in options.items() if value != default})
        return name, "attachments.fields.AttachmentField", args, kwargs

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        if not any(field.name == self.state_attname for field in cls._meta.local_fields):
            AttachmentStateField().contribute_to_class(cls, self.state_attname)
        if not cls._meta.abstract:
            uid = f"attachments:{cls._meta.label_lower}.{name}"
            post_save.connect(self._after_save, sender=cls, weak=False, dispatch_uid=uid)
            post_delete.connect(self._after_delete, sender=cls, weak=False, dispatch_uid=uid)

    def formfield(self, **kwargs: Any) -> forms.Field:
        # The admin hands every FileField its AdminFileWidget; keep its look, add the preview.
        widget = kwargs.get("widget")
        if widget is AdminFileWidget or isinstance(widget, AdminFileWidget):
            kwargs["widget"] = AdminAttachmentWidget
        return super().formfield(
            **{"form_class": AttachmentFormField, "widget": AttachmentWidget, **kwargs}
        )

    def current_name(self, instance: models.Model) -> str:
        """Return the name the record has in the database now, in whatever state, or ``""``.

        A new upload replaces it. Even if it is still processing, its job may
        publish it before this save lands (without a transaction nothing stops
        that), so the new upload's job deletes it too once ready: deleting a
        version that was never published costs nothing.
        """
        if instance._state.adding or instance.pk is None:
            return ""
        rows = type(instance)._base_manager.using(
            instance._state.db or router.db_for_write(type(instance))
        )
        if transaction.get_connection(rows.db).in_atomic_block:
            # Lock the row so a worker cannot publish a version unseen by us.
            rows = rows.select_for_update()
        return rows.filter(pk=instance.pk).values_list(self.attname, flat=True).first() or ""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        file = super().pre_save(model_instance, add)
        if not file and getattr(model_instance, self.state_attname):
            # Emptied since it was loaded (a form's "clear" box, delete(), or
            # assigning None): the state still tells. What the database holds
            # now is what this save removes.
            setattr(model_instance, self.state_attname, "")
            if not add:
                removal = _Removal(self.current_name(model_instance))
                model_instance.__dict__.setdefault(_PENDING, {})[self.name] = removal
        return file

    def delete_versions(self, names: Iterable[str]) -> None:
        """Delete every file the versions ``names`` may occupy, staged or published.

        Whatever state the record showed, a worker may have moved a version on
        since, so both places are cleared; names are unique, so nothing else
        is touched.
        """
        staged = storage.staging_storage()
        for name in names:
            storage.delete_all(staged, [name])
            storage.delete_all(self.storage, storage.version_names(name, self.styles.values()))

    def _forget(self, object_id: object, name: str, using: str) -> None:
        """Drop the record's waiting jobs; on commit, delete ``name`` and every one they name."""
        names = dict.fromkeys([name, *queue.discard_target(self.field_id, object_id)])
        transaction.on_commit(lambda: self.delete_versions(names), using=using)

    def _after_save(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        upload = instance.__dict__.get(_PENDING, {}).pop(self.name, None)
        if upload is None:
            return
        using = kwargs.get("using") or router.db_for_write(sender)
        if isinstance(upload, _Removal):  # the field was emptied, not given a new file
            if upload.name:
                self._forget(instance.pk, upload.name, using)
            return
        from .processing import run_after_commit

        if not self.process_in_background or conf.BACKEND == "immediate":
            run_after_commit(self, instance, upload.source, upload.previous, using=using)
            return
        if conf.BACKEND == "tasks":
            from . import tasks

            pk = instance.pk
            transaction.on_commit(
                lambda: tasks.send(self, pk, upload.source, upload.previous), using=using
            )
            return
        self.enqueue(
            instance.pk,
            upload.source,
            upload.previous,
            new_record=bool(kwargs.get("created")),
            using=using,
        )

    def enqueue(
        self,
        object_id: object,
        source: str,
        previous: tuple[str, ...],
        *,
        new_record: bool = False,
        using: str | None = None,
    ) -> None:
        """Queue the job of one upload; the staged originals of jobs it replaces go on commit."""
        enqueued = queue.enqueue(
            target=self.field_id,
            object_id=object_id,
            source=source,
            previous=previous,
            queue=self.queue_name,
            priority=self.priority,
            max_attempts=self.max_attempts or conf.MAX_ATTEMPTS,
            new_record=new_record,
        )
        if enqueued.superseded_sources:
            staged = storage.staging_storage()
            transaction.on_commit(
                lambda: storage.delete_all(staged, enqueued.superseded_sources), using=using
            )

    def _after_delete(
        self, sender: type[models.Model], instance: models.Model, **kwargs: Any
    ) -> None:
        file = getattr(instance, self.attname)
        if file:
            self._forget(instance.pk, file.name, kwargs.get("using") or router.db_for_write(sender))
