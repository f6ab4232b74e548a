"""Messages users read come in their language, and projects can reword them."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from attachments.fields import AttachmentFormField
from attachments.models import Job
from demo_site.models import Item
from tests import images

LOCALE = Path(__file__).resolve().parent.parent / "attachments" / "locale"


class UploadForm(forms.Form):
    image = AttachmentFormField()


def errors(form_class: type[forms.Form], name: str, data: bytes) -> list[str]:
    form = form_class({}, {"image": SimpleUploadedFile(name, data)})
    assert not form.is_valid()
    return form.errors["image"]


def test_form_errors_are_in_french(settings):
    settings.ATTACHMENTS = {"MAX_BYTES": 10, "FORMATS": ("JPEG", "PNG")}
    with translation.override("fr"):
        assert errors(UploadForm, "a.jpg", b"<html>") == [
            "Le fichier n’est pas une image valide. Formats acceptés : JPEG, PNG."
        ]
        assert errors(UploadForm, "a.png", images.png((4, 4))) == [
            f"Le fichier fait {len(images.png((4, 4)))}\xa0octets ; "
            "le maximum accepté est de 10\xa0octets."
        ]
        settings.ATTACHMENTS = {"MAX_PIXELS": 100}
        assert errors(UploadForm, "a.png", images.png((20, 10))) == [
            "L’image fait 20×10 pixels (200) ; le maximum accepté est de 100 pixels."
        ]
        # The same check in English, so the test shows the translation made the difference.
    assert errors(UploadForm, "a.png", images.png((20, 10))) == [
        "The image is 20x10 pixels (200); the largest accepted is 100 pixels."
    ]


def test_error_messages_override_by_code(settings):
    class PhotoForm(forms.Form):
        image = AttachmentFormField(
            error_messages={
                "invalid_image": "Photos only, please (%(formats)s).",
                "too_many_pixels": "At most %(max)s pixels.",
            }
        )

    settings.ATTACHMENTS = {"FORMATS": ("JPEG",), "MAX_PIXELS": 100}
    assert errors(PhotoForm, "a.gif", images.gif((4, 4))) == ["Photos only, please (JPEG)."]
    assert errors(PhotoForm, "a.jpg", images.jpeg((20, 10))) == ["At most 100 pixels."]
    form = PhotoForm({}, {"image": SimpleUploadedFile("a.gif", images.gif((4, 4)))})
    assert form.has_error("image", code="invalid_image")


def test_model_form_meta_error_messages_reach_the_field(settings):
    class ItemForm(forms.ModelForm):
        class Meta:
            model = Item
            fields = ["image"]
            error_messages = {"image": {"invalid_image": "Photos only (%(formats)s)."}}

    settings.ATTACHMENTS = {"FORMATS": ("PNG",)}
    assert errors(ItemForm, "a.jpg", b"<html>") == ["Photos only (PNG)."]


@pytest.mark.django_db
def test_widget_labels_are_in_french():
    item = Item(title="x", image="items/a.jpg", image_state="failed")
    field = Item._meta.get_field("image").formfield()
    with translation.override("fr"):
        html = field.widget.render("image", item.image)
    assert "Le traitement a échoué ; l’original est conservé" in html


@pytest.mark.django_db
def test_job_dashboard_is_in_french(admin_client):
    Job.objects.create(
        target="demo_site.item.image",
        object_id="1",
        source="items/a.jpg",
        failed_at=timezone.now(),
        last_error="OSError: disk",
    )
    with translation.override("fr"):
        page = admin_client.get("/admin/attachments/job/").content.decode()
    assert "Débit" in page
    assert "En échec (1), les plus récentes d’abord" in page
    assert "Relancer 1 tâche en échec" in page
    assert "en échec" in page  # the state column


def test_every_french_message_is_translated_and_compiled():
    po = (LOCALE / "fr" / "LC_MESSAGES" / "django.po").read_text()
    assert "#, fuzzy" not in po
    with (LOCALE / "fr" / "LC_MESSAGES" / "django.mo").open("rb") as fp:
        compiled = gettext.GNUTranslations(fp)
    entries = _entries(po)
    assert entries
    for msgid, msgstr in entries.items():
        assert msgstr, f"{msgid!r} is not translated"
        assert compiled.gettext(msgid) == msgstr, f"{msgid!r}: the .mo is older than the .po"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is not installed")
def test_the_catalog_lists_every_message_in_the_code(tmp_path):
    """A message wrapped in the code but missing from the .po would stay English."""
    copy = tmp_path / "attachments"
    shutil.copytree(LOCALE.parent, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    subprocess.run(
        # -P: the copy's own queue.py must not shadow the standard library's.
        [sys.executable, "-P", "-m", "django", "makemessages", "-l", "fr"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(LOCALE.parent.parent),
        },
    )
    extracted = (copy / "locale" / "fr" / "LC_MESSAGES" / "django.po").read_text()
    shipped = (LOCALE / "fr" / "LC_MESSAGES" / "django.po").read_text()
    assert _msgids(extracted) == _msgids(shipped)


def _msgids(po: str) -> set[str]:
    return set(_entries(po))


def _entries(po: str) -> dict[str, str]:
    """A .po file's messages (singular forms) and their translations, without the header."""
    entries = {}
    pattern = r'^msgid ((?:".*"\n)+)(?:msgid_plural (?:".*"\n)+)?msgstr(?:\[0\])? ((?:".*"\n)+)'
    for match in re.finditer(pattern, po + "\n", re.M):
        msgid, msgstr = (_unquote(group) for group in match.groups())
        if msgid:
            entries[msgid] = msgstr
    return entries


def _unquote(lines: str) -> str:
    return "".join(re.findall(r'"(.*)"', lines)).replace('\\"', '"')
