"""The queue's housekeeping, shared by our worker and the task backends' housekeeping task."""

from __future__ import annotations

import time

import pytest

from attachments import housekeeping, orphans

pytestmark = pytest.mark.django_db


@pytest.fixture
def scans(monkeypatch) -> list[object]:
    calls: list[object] = []
    monkeypatch.setattr(orphans, "requeue", lambda older_than: calls.append(older_than))
    return calls


def test_a_worker_looks_for_orphans_at_once_then_seldom(scans):
    keeper = housekeeping.Housekeeping()
    keeper.run()
    keeper.run()
    assert len(scans) == 1


def test_a_task_looks_for_orphans_when_a_period_boundary_fell_since_the_last_run(scans):
    now = time.time()
    period_start = now - now % housekeeping.ORPHANS_EVERY
    # Each run is a new process: only the time of the chain's last run tells.
    housekeeping.Housekeeping(last_run=period_start + 0.001).run()
    assert scans == []
    housekeeping.Housekeeping(last_run=period_start - 1).run()
    assert len(scans) == 1
