from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from attachments.checks import (
    check_queue_database,
    check_queue_isolation,
    check_settings,
    check_status_url,
    queue_database_errors,
    queue_isolation_warnings,
)


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


@pytest.mark.django_db
def test_the_queue_database_passes(settings):
    assert check_queue_database(databases=["default"]) == []
    settings.ATTACHMENTS = {"BACKEND": "immediate"}
    assert check_queue_database(databases=["default"]) == []


@pytest.mark.parametrize(
    ("server", "error_id"),
    [
        ({"vendor": "oracle"}, "attachments.E151"),
        (
            {"vendor": "mysql", "mysql_is_mariadb": True, "mysql_version": (10, 5, 26)},
            "attachments.E150",
        ),
        (
            {"vendor": "mysql", "mysql_is_mariadb": False, "mysql_version": (5, 7, 44)},
            "attachments.E150",
        ),
        (
            {"vendor": "sqlite", "Database": SimpleNamespace(sqlite_version_info=(3, 34, 1))},
            "attachments.E150",
        ),
    ],
)
def test_a_database_the_queue_cannot_claim_on_is_refused(server, error_id):
    # What the server answers, as Django's connection reports it.
    connection = SimpleNamespace(alias="default", **server)
    (error,) = queue_database_errors(connection)
    assert error.id == error_id


@pytest.mark.parametrize(
    "server",
    [
        {"vendor": "mysql", "mysql_is_mariadb": True, "mysql_version": (10, 6, 0)},
        {"vendor": "mysql", "mysql_is_mariadb": False, "mysql_version": (8, 0, 1)},
        {"vendor": "sqlite", "Database": SimpleNamespace(sqlite_version_info=(3, 35, 0))},
        {"vendor": "postgresql"},
    ],
)
def test_the_oldest_servers_the_claim_runs_on_pass(server):
    assert queue_database_errors(SimpleNamespace(alias="default", **server)) == []


def test_the_test_database_keeps_the_isolation_claims_expect():
    assert check_queue_isolation() == []


@pytest.mark.parametrize("level", ["repeatable read", "serializable", None])
def test_a_mysql_isolation_level_that_locks_gaps_warns(level):
    connection = SimpleNamespace(
        alias="default", vendor="mysql", settings_dict={"OPTIONS": {"isolation_level": level}}
    )
    (warning,) = queue_isolation_warnings(connection)
    assert warning.id == "attachments.W050"


@pytest.mark.parametrize("options", [{}, {"isolation_level": "READ COMMITTED"}])
def test_mysql_at_read_committed_passes(options):
    connection = SimpleNamespace(
        alias="default", vendor="mysql", settings_dict={"OPTIONS": options}
    )
    assert queue_isolation_warnings(connection) == []
