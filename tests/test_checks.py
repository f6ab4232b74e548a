from __future__ import annotations

import os

import pytest

from attachments.checks import check_settings, check_status_url


def ids() -> list[str]:
    return [message.id for message in check_settings()]


def test_default_settings_pass():
    assert ids() == []


@pytest.mark.parametrize(
    ("value", "error_id"),
    [
        ([], "attachments.E101"),
        ({"MAX_PIXEL": 10}, "attachments.E102"),
        ({"BACKEND": "celery"}, "attachments.E103"),
        ({"STAGING_STORAGE": "missing"}, "attachments.E104"),
        ({"MAX_BYTES": 0}, "attachments.E105"),
        ({"MAX_PIXELS": "lots"}, "attachments.E105"),
        ({"MAX_ATTEMPTS": True}, "attachments.E105"),
        ({"POLL_INTERVAL": 0}, "attachments.E106"),
        ({"LOCK_TIMEOUT": "5m"}, "attachments.E106"),
        ({"HEARTBEAT_INTERVAL": 10, "LOCK_TIMEOUT": 20}, "attachments.E107"),
        ({"KEEP_FAILED_DAYS": -1}, "attachments.E108"),
        ({"MEMORY_BUDGET": "1G"}, "attachments.E109"),
        ({"MEMORY_BUDGET": 0}, "attachments.E109"),
        ({"PREPARED_STATEMENTS": "yes"}, "attachments.E110"),
        ({"STAGING_ROOT": 42}, "attachments.E131"),
        ({"STAGING_ROOT": "/srv/staging", "STAGING_STORAGE": "default"}, "attachments.E132"),
        ({"LEFTOVER_GRACE": 0}, "attachments.E133"),
        ({"LEFTOVER_GRACE": "1d"}, "attachments.E133"),
    ],
)
def test_each_misconfiguration_has_its_own_id(settings, value, error_id):
    settings.ATTACHMENTS = value
    assert error_id in ids()


def test_check_ids_are_unique_per_problem():
    import re
    from pathlib import Path

    import attachments

    source = "".join(p.read_text() for p in Path(attachments.__file__).parent.glob("*.py"))
    ids = re.findall(r'id="(attachments\.[EW]\d+)"', source)
    assert len(ids) == len(set(ids))


def test_leftover_grace_may_be_none():
    from django.test import override_settings

    with override_settings(ATTACHMENTS={"LEFTOVER_GRACE": None}):
        assert ids() == []


@pytest.mark.parametrize("served", ["MEDIA_ROOT", "STATIC_ROOT", "STATICFILES_DIRS"])
def test_staging_in_a_served_folder_warns(settings, tmp_path, served):
    folder = tmp_path / "served"
    if served == "STATICFILES_DIRS":
        settings.STATICFILES_DIRS = [("x", str(tmp_path / "other")), str(folder)]
    else:
        setattr(settings, served, str(folder))
    settings.ATTACHMENTS = {"STAGING_ROOT": str(folder / "attachments-staging")}
    assert ids() == ["attachments.W030"]


def test_staging_storage_alias_in_media_root_warns(staging_alias, media):
    staging_alias(media / "attachments-staging")
    assert ids() == ["attachments.W030"]


def test_staging_holding_media_root_is_an_error(settings, media):
    settings.ATTACHMENTS = {"STAGING_ROOT": str(media.parent)}
    assert ids() == ["attachments.E130"]


def test_staging_that_is_media_root_is_served_and_shared(settings, media):
    settings.ATTACHMENTS = {"STAGING_ROOT": str(media)}
    assert sorted(ids()) == ["attachments.E130", "attachments.W030"]


def test_default_staging_beside_a_mounted_media_root_warns(settings):
    mounted = next((p for p in ("/proc", "/sys", "/dev") if os.path.ismount(p)), None)
    if mounted is None:
        pytest.skip("no mount point to point MEDIA_ROOT at")
    settings.MEDIA_ROOT = mounted  # only looked at, never written to
    assert ids() == ["attachments.W031"]
    settings.ATTACHMENTS = {"STAGING_ROOT": "/srv/staging"}
    assert ids() == []


def test_status_endpoint_routed_passes():
    assert check_status_url() == []


def test_status_endpoint_not_routed_warns(settings):
    settings.ROOT_URLCONF = "tests.urls_without_attachments"
    (warning,) = check_status_url()
    assert warning.id == "attachments.W040"
    assert 'include("attachments.urls")' in warning.hint
