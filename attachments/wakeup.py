"""How an idle worker waits for work.

PostgreSQL: LISTEN/NOTIFY. SQLite: a connection of its own watches
``PRAGMA data_version``, which changes whenever another connection commits,
a look that reads no table. Elsewhere: polling the job table.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

from django.db import connections

from .claims.postgresql import CHANNEL

logger = logging.getLogger("attachments")

# Jobs that become due by the clock (scheduled, retries) send no NOTIFY, so a
# listening worker still looks at the table this often.
_LISTEN_FALLBACK = 1.0
_MIN_SLICE = 0.25
# How often an idle SQLite worker asks whether anything was committed: a few
# microseconds each (measured in benchmarks/queue.py: pickup and idle CPU).
_DATA_VERSION_INTERVAL = 0.006


class Waiter(Protocol):
    def wait(self, timeout: float) -> None:
        """Return when work may have arrived, on stop, or after ``timeout`` seconds."""

    def close(self) -> None: ...


class PollingWaiter:
    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def wait(self, timeout: float) -> None:
        self.stopping.wait(timeout)

    def close(self) -> None:
        pass


class ListeningWaiter:
    """A dedicated connection that LISTENs to the queue's channel."""

    def __init__(self, using: str, stopping: threading.Event) -> None:
        self.using = using
        self.stopping = stopping
        self.connection = self._listen()

    def _listen(self) -> Any:
        wrapper = connections[self.using]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        return connection

    def wait(self, timeout: float) -> None:
        """Wait for a NOTIFY, at most ``_LISTEN_FALLBACK`` seconds.

        The wait is cut in ``timeout``-long slices so a stop request is seen
        promptly, but the job table is looked at only on a NOTIFY or once the
        fallback has passed: an idle worker costs the database nothing else.
        """
        deadline = time.monotonic() + _LISTEN_FALLBACK
        # Each slice costs about a millisecond of CPU: 50 ms slices would be 2% of
        # a core for an idle worker; a quarter second still sees a stop promptly.
        slice_ = max(timeout, _MIN_SLICE)
        try:
            if self.connection is None:
                self.connection = self._listen()
            while not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # Not nested: the generator holds the connection's lock while it runs.
                woken = any(
                    True for _ in self.connection.notifies(timeout=min(slice_, left), stop_after=1)
                )
                if woken:
                    # Several enqueues may have notified at once; one look serves them all.
                    for _ in self.connection.notifies(timeout=0):
                        pass
                    return
        except Exception:
            # The server dropped us: poll until a new LISTEN connection can be made.
            logger.warning("Lost the LISTEN connection; polling meanwhile.", exc_info=True)
            self.close()
            self.stopping.wait(timeout)

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


class DataVersionWaiter:
    """SQLite: a dedicated connection watching ``PRAGMA data_version``.

    An enqueue commits from another connection, which changes the number; the
    job table is then looked at, or once ``_LISTEN_FALLBACK`` has passed for
    jobs that become due by the clock. Any commit (a session, a stats row)
    wakes the worker too: one needless look, no harm.
    """

    def __init__(self, using: str, stopping: threading.Event) -> None:
        wrapper = connections[using]
        self.stopping = stopping
        self.connection = wrapper.get_new_connection(wrapper.get_connection_params())
        self.version = self._version()

    def _version(self) -> int:
        return int(self.connection.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, _LISTEN_FALLBACK)
        try:
            while not self.stopping.is_set():
                # A plain sleep: Event.wait's timed lock costs several times more CPU.
                time.sleep(_DATA_VERSION_INTERVAL)
                version = self._version()
                if version != self.version:
                    self.version = version
                    return
                if time.monotonic() >= deadline:
                    return
        except Exception:
            # The file went away or is locked in a way we cannot read: poll instead.
            logger.warning("Cannot watch the SQLite database; polling.", exc_info=True)
            self.stopping.wait(timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


def waiter_for(using: str, stopping: threading.Event) -> Waiter:
    """Return the best way to wait for new jobs on database ``using``."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        try:
            return ListeningWaiter(using, stopping)
        except Exception:  # psycopg2, a pooler without LISTEN...: polling still works
            logger.warning("LISTEN is not available; polling the job table.", exc_info=True)
    # is_in_memory_db() is the SQLite wrapper's own.
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():  # type: ignore[attr-defined]
        return DataVersionWaiter(using, stopping)
    return PollingWaiter(stopping)
