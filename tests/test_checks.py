from __future__ import annotations

import pytest

from attachments.checks import check_settings


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
    ],
)
def test_each_misconfiguration_has_its_own_id(settings, value, error_id):
    settings.ATTACHMENTS = value
    assert error_id in ids()
