from __future__ import annotations

import io
import posixpath
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

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


class _OwnWayStorage(FileSystemStorage):
    """Saves its own way (an S3 storage, a storage that processes files): never linked to."""

    def _save(self, name, content):
        return super()._save(name, content)


def _staged_original(tmp_path, staged_class=FileSystemStorage):
    staged = staged_class(location=tmp_path / "staging")
    staged.save("u/0123456789abcdef0123456789abcdef/a.jpg", ContentFile(b"original"))
    return staged, "u/0123456789abcdef0123456789abcdef/a.jpg"


@pytest.mark.parametrize("mode", [None, 0o640])
def test_a_staged_original_is_stored_without_copying_on_one_file_system(tmp_path, mode):
    staged, name = _staged_original(tmp_path)
    target = FileSystemStorage(location=tmp_path / "media", file_permissions_mode=mode)
    storage.put(target, name, b"partial")  # a failed attempt's leftover
    with staged.open(name) as content:
        storage.put_staged(staged, target, name, content)
    assert Path(target.path(name)).samefile(staged.path(name))
    if mode is not None:
        assert Path(target.path(name)).stat().st_mode & 0o777 == mode
    storage.delete_all(staged, [name])  # what the job does once the record shows it
    with target.open(name) as fp:
        assert fp.read() == b"original"


def test_a_staged_original_is_linked_into_the_default_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    staged, name = _staged_original(tmp_path)
    with staged.open(name) as content:
        storage.put_staged(staged, default_storage, name, content)
    assert Path(default_storage.path(name)).samefile(staged.path(name))


@pytest.mark.parametrize("own_way", ["staging", "target"])
def test_a_staged_original_is_copied_into_a_storage_that_saves_its_own_way(tmp_path, own_way):
    staged, name = _staged_original(
        tmp_path, _OwnWayStorage if own_way == "staging" else FileSystemStorage
    )
    target = (_OwnWayStorage if own_way == "target" else FileSystemStorage)(
        location=tmp_path / "media"
    )
    with staged.open(name) as content:
        content.read()  # the render read it to the end
        storage.put_staged(staged, target, name, content)
    assert not Path(target.path(name)).samefile(staged.path(name))
    with target.open(name) as fp:
        assert fp.read() == b"original"


def test_delete_all_ignores_missing_names(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    storage.put(target, "x.jpg", b"x")
    storage.delete_all(target, ["x.jpg", "never-there.jpg"])
    assert not target.exists("x.jpg")


def test_staging_defaults_to_a_private_folder_beside_media_root(media):
    staged = storage.staging_storage()
    # Outside MEDIA_ROOT: whatever serves /media/ never serves a staged upload.
    assert Path(staged.location) == media.parent / "media-staging"
    assert media not in Path(staged.location).parents
    with pytest.raises(ValueError, match="not accessible via a URL"):
        staged.url("x.jpg")


def test_staging_root_setting(settings, tmp_path):
    settings.ATTACHMENTS = {"STAGING_ROOT": tmp_path / "private"}
    assert storage.staging_storage().location == str(tmp_path / "private")


def test_deleting_an_uploads_last_file_removes_its_folder_only(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    original = storage.unique_name("photos/2026/a.jpg")
    names = [original, storage.style_name(original, "t", "0123abcd", "JPEG")]
    for name in names:
        storage.put(target, name, b"x")
    storage.delete_all(target, names[:1])
    assert (tmp_path / posixpath.dirname(original)).is_dir()  # a style is still there
    storage.delete_all(target, names[1:])
    assert not (tmp_path / posixpath.dirname(original)).exists()
    # upload_to's folder is shared by every upload: another may be arriving in it.
    assert (tmp_path / "photos" / "2026").is_dir()


def test_deleting_keeps_folders_not_made_for_one_upload(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    storage.put(target, "legacy/a.jpg", b"x")
    storage.delete_all(target, ["legacy/a.jpg"])
    assert (tmp_path / "legacy").is_dir()


def test_walk_lists_every_file_and_empty_upload_folders(tmp_path):
    target = FileSystemStorage(location=tmp_path)
    kept = storage.unique_name("photos/a.jpg")
    storage.put(target, kept, b"x")
    storage.put(target, "top.txt", b"x")
    empty = posixpath.dirname(storage.unique_name("photos/b.jpg"))
    (tmp_path / empty).mkdir(parents=True)
    (tmp_path / "not-an-upload").mkdir()
    found = dict(storage.walk(target))
    assert set(found) == {kept, "top.txt", empty + "/"}
    assert found[kept] == target.get_modified_time(kept)


def test_walk_of_a_missing_folder_is_empty(tmp_path):
    assert list(storage.walk(FileSystemStorage(location=tmp_path / "none"))) == []


def test_within_compares_whole_path_segments(tmp_path):
    media = storage.folder_place(tmp_path / "media")
    assert storage.within(storage.folder_place(tmp_path / "media" / "staging"), media)
    assert storage.within(media, media)
    assert not storage.within(storage.folder_place(tmp_path / "media-staging"), media)
    assert not storage.within(("s3::b", "/media/x"), media)


def test_staging_storage_alias(staging_alias, tmp_path):
    staging_alias(tmp_path / "shared")
    assert storage.staging_storage().location == str(tmp_path / "shared")
