"""How an idle worker waits for work: LISTEN/NOTIFY on PostgreSQL, polling elsewhere."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

from django.db import connections

from .queue import CHANNEL

logger = logging.getLogger("attachments")

# Jobs that become due by the clock (scheduled, retries) send no NOTIFY, so a
# listening worker still looks at the table this often.
_LISTEN_FALLBACK = 1.0
_MIN_SLICE = 0.25


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


def waiter_for(using: str, stopping: threading.Event) -> Waiter:
    """Return the best way to wait for new jobs on database ``using``."""
    if connections[using].vendor == "postgresql":
        try:
            return ListeningWaiter(using, stopping)
        except Exception:  # psycopg2, a pooler without LISTEN...: polling still works
            logger.warning("LISTEN is not available; polling the job table.", exc_info=True)
    return PollingWaiter(stopping)
