"""The file an ``AttachmentField`` gives its record: an upload's way from the form to a job.

``AttachmentFieldFile.save`` validates and stages an upload, makes the field's
``only_process`` styles, and leaves an ``_Upload`` on the instance for the
record's save to turn into the record's new version (``fields``, ``versions``).
Its read side (state, URLs, sizes) reads the record's columns: no query.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.base import File
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.utils.translation import gettext_lazy as _

from . import imaging, plan, previews, renditions, storage, versions
from .exceptions import InvalidImage, StagingFailed
from .geometry import Point
from .targets import FAILED, PROCESSING, READY
from .validation import validate_upload

if TYPE_CHECKING:
    from .fields import AttachmentField

logger = logging.getLogger("attachments")

# Where an instance keeps its uploads between the file's save and the record's.
PENDING = "_attachments_pending"
# Where it keeps a focal point set on a published record until the record's save.
FOCUS = "_attachments_focus"


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
        self._file.field.styles[key]  # KeyError for a style the field does not declare
        file = self._file
        return StyleFile(name=file.style_file(key), storage=file.storage, url=file.style_url(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._file.field.styles)

    def __len__(self) -> int:
        return len(self._file.field.styles)


@dataclass
class Upload:
    """A staged upload on its way into the record, from the file's save to post_save."""

    source: str
    # The record's other columns that describe the new version (its styles state, dimensions).
    columns: dict[str, Any]
    # Set by the record's save once the upload has replaced the record's version.
    replaced: versions.Replaced | None = None
    # The record's row was gone: the save inserts it again, as Django does.
    reinserted: bool = False


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

    @property
    def made(self) -> Any:
        """The record's ``<name>_styles`` value: what is made for this original (see ``plan``)."""
        return getattr(self.instance, self.field.styles_attname) if self.name else {}

    @property
    def width(self) -> int | None:
        """The original's width as displayed, from its header; None when unknown."""
        size = plan.original_size(self.made)
        return size[0] if size else None

    @property
    def height(self) -> int | None:
        """The original's height as displayed, from its header; None when unknown."""
        size = plan.original_size(self.made)
        return size[1] if size else None

    @property
    def focus(self) -> Point | None:
        """The focal point, ``(x, y)`` as fractions of the upright original; None when unset."""
        return plan.focus(self.made)

    @focus.setter
    def focus(self, value: Sequence[float] | None) -> None:
        """Set (None: unset) the focal point; the record's save stores it.

        Crop styles without a gravity of their own keep it in frame; once the
        save commits, a job remakes just those. A new upload starts without one.
        """
        self._existing_name()
        point = plan.to_focus(value)
        state = {key: v for key, v in (self.made or {}).items() if key != plan.FOCUS}
        if point is not None:
            state[plan.FOCUS] = list(point)
        setattr(self.instance, self.field.styles_attname, state)
        upload = self.instance.__dict__.get(PENDING, {}).get(self.field.name)
        if isinstance(upload, Upload):  # not saved yet: the upload's own columns carry it
            upload.columns[self.field.styles_attname] = state
        else:
            self.instance.__dict__.setdefault(FOCUS, {})[self.field.name] = point

    def style_size(self, style: str) -> tuple[int, int] | None:
        """Return the size ``style`` has for this original, made or not; None when unknown."""
        return plan.planned_size(self.field.styles[style], self.made)

    def style_file(self, style: str) -> str:
        """Return the name of ``style``'s file in the field's storage, "" when it has none.

        A responsive style's is its fallback: its widest file in its last format.
        """
        self.field.styles[style]  # KeyError for a style the field does not declare
        if not self.name:
            return ""
        names = storage.made_names(self.name, style, plan.made(self.made).get(style))
        return names[-1] if names else ""

    def style_url(self, style: str) -> str:
        """Return the URL of ``style``, or of what stands in for it until it is made.

        While the original is not published, that is a placeholder (the failed
        image if it failed, as ``url``); then the field's ``fallback``: the
        nearest made style that covers it, else the original (``"nearest"``),
        or the original (``"original"``). A style made from an older
        declaration is served until it is made again.
        """
        self._existing_name()
        name = self.style_file(style)
        if name:
            return self.storage.url(name)
        if not self.ready:
            return self.url
        if self.field.fallback == "nearest":
            nearest = plan.stand_in(self.field.styles[style], self.field.styles, self.made)
            if nearest:
                return self.storage.url(self.style_file(nearest))
        return super().url

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
        info: imaging.ImageInfo = getattr(content, "image_info", None) or validate_upload(content)
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
        columns = self.field.version_columns((info.width, info.height))
        preview = previews.from_thumbnail(info)  # else the worker makes it first
        if preview:
            columns[self.field.styles_attname][plan.PREVIEW] = preview
        if self.field.only_process and self.field.process_in_background:
            columns[self.field.styles_attname].update(_render_now(self.field, self.name, content))
        setattr(self.instance, self.field.attname, self.name)
        setattr(self.instance, self.field.state_attname, PROCESSING)
        for attname, value in columns.items():
            setattr(self.instance, attname, value)
        self.instance.__dict__.setdefault(PENDING, {})[self.field.name] = Upload(self.name, columns)
        # A focal point set on the version this replaces was a point of that image.
        self.instance.__dict__.get(FOCUS, {}).pop(self.field.name, None)
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


def _render_now(field: AttachmentField, name: str, content: File[Any]) -> dict[str, Any]:
    """Make the field's ``only_process`` styles of the upload ``name`` in this request.

    Returns their entries for the record's state. If they cannot be made here
    (damaged pixels, the storage down), the worker makes them with the rest.
    """
    styles = [field.styles[style] for style in field.only_process]
    try:
        content.seek(0)
        return renditions.make(field, name, content, styles).entries
    except (InvalidImage, OSError) as exc:
        logger.warning("Styles %s of %s left to the worker: %s", field.only_process, name, exc)
        return {}
    finally:
        content.seek(0)
