"""The least a NOTIFY-woken database worker can do: the pickup latency floor.

    python -m benchmarks.peerapp.floor

LISTENs on its own connection; on each notification, one round trip on a
second connection (where a claim would go), then the stamp (``tasks._stamp``)
with the payload as its key. No Django: psycopg alone, so that ``peers.py``
can set the queues' pickup beside what the machine and PostgreSQL allow.
"""

from __future__ import annotations

import os
import signal
import sys

import psycopg

CHANNEL = "attachments_bench_floor"


def main() -> int:
    from benchmarks.peerapp.tasks import _stamp

    params = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": os.environ["ATTACHMENTS_BENCH_PG_NAME"],
        "autocommit": True,
    }
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with psycopg.connect(**params) as listening, psycopg.connect(**params) as working:
        listening.execute(f"LISTEN {CHANNEL}")
        for notification in listening.notifies():
            working.execute("SELECT 1").fetchone()
            _stamp(notification.payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
