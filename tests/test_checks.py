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
        ({"POLL_INTERVAL": 0}, "attachments.E106"),
        ({"LOCK_TIMEOUT": "5m"}, "attachments.E106"),
        ({"HEARTBEAT_INTERVAL": 10, "LOCK_TIMEOUT": 20}, "attachments.E107"),
        ({"KEEP_FAILED_DAYS": -1}, "attachments.E108"),
        ({"MEMORY_BUDGET": "1G"}, "attachments.E109"),
        ({"MEMORY_BUDGET": 0}, "attachments.E109"),
        ({"PREPARED_STATEMENTS": "yes"}, "attachments.E110"),
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
