"""How an idle worker learns of new jobs: by database, without looking at the job table."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from attachments import queue, wakeup

pytestmark = pytest.mark.django_db(transaction=True)


def waiting(waiter: wakeup.Waiter, timeout: float) -> threading.Thread:
    thread = threading.Thread(target=waiter.wait, args=(timeout,), daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's data_version")
def test_sqlite_worker_wakes_when_another_connection_commits_a_job():
    stopping = threading.Event()
    waiter = wakeup.waiter_for("default", stopping)
    assert isinstance(waiter, wakeup.DataVersionWaiter)
    try:
        thread = waiting(waiter, 600)
        thread.join(0.2)
        assert thread.is_alive()  # nothing committed: still waiting
        queue.enqueue(target="demo_site.item.image", object_id=1, source="a.jpg")
        thread.join(30)
        assert not thread.is_alive()
        # Seen once: the next wait waits again, until stopped.
        thread = waiting(waiter, 600)
        thread.join(0.2)
        assert thread.is_alive()
        stopping.set()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        waiter.close()
