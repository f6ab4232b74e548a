from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from attachments import storage


@pytest.mark.parametrize(
    ("client_name", "expected"),
    [
        ("Holiday Photo.JPG", "holiday-photo.jpg"),
        ("../../etc/passwd", "passwd.jpg"),
        ("C:\\Users\\me\\cat.png", "cat.jpg"),
        ("evil\x00.php.jpg", "evilphp.jpg"),
        ("\u202egpj.exe", "gpj.jpg"),
        ("фото.jpg", "image.jpg"),
        ("", "image.jpg"),
        ("x" * 500 + ".jpg", "x" * 60 + ".jpg"),
    ],
)
def test_upload_filename_keeps_only_a_slug_and_takes_the_extension_from_content(
    client_name, expected
):
    assert storage.upload_filename(client_name, "JPEG") == expected


def test_unique_name_puts_every_upload_in_its_own_directory():
    first, second = storage.unique_name("items/a.jpg"), storage.unique_name("items/a.jpg")
    assert first != second
    assert first.startswith("items/")
    assert first.endswith("/a.jpg")


def test_style_names_carry_the_declaration_and_the_output_format():
    assert storage.style_name("i/u/a.png", "thumb", "0123abcd", "PNG") == "i/u/a-thumb-0123abcd.png"
    assert storage.style_name("i/u/a.png", "icon", "0123abcd", "WEBP") == "i/u/a-icon-0123abcd.webp"


def test_version_files_are_everything_in_the_versions_directory(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    for name in ("i/u/a.png", "i/u/a-thumb-1.png", "i/u/a-thumb-2.webp", "i/v/b.png"):
        target.save(name, ContentFile(b"x"))
    assert sorted(storage.version_files(target, "i/u/a.png")) == [
        "i/u/a-thumb-1.png",
        "i/u/a-thumb-2.webp",
        "i/u/a.png",
    ]
    assert storage.version_files(target, "i/gone/a.png") == []


def test_put_writes_at_exactly_the_name_and_replaces_a_partial_attempt(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    storage.put(target, "a/b.jpg", b"partial")
    storage.put(target, "a/b.jpg", io.BytesIO(b"whole"))
    assert target.listdir("a") == ([], ["b.jpg"])
    with target.open("a/b.jpg") as fp:
        assert fp.read() == b"whole"


def test_delete_all_ignores_missing_names(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    storage.put(target, "x.jpg", b"x")
    storage.delete_all(target, ["x.jpg", "never-there.jpg"])
    assert not target.exists("x.jpg")


def test_staging_defaults_to_a_private_folder_under_media_root(media):
    staged = storage.staging_storage()
    assert staged.location == str(media / "attachments-staging")
    with pytest.raises(ValueError, match="not accessible via a URL"):
        staged.url("x.jpg")


def test_staging_storage_alias(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "uploads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "shared")},
        },
    }
    settings.ATTACHMENTS = {"STAGING_STORAGE": "uploads"}
    assert storage.staging_storage().location == str(tmp_path / "shared")
