"""What a pickup on PostgreSQL is made of: each statement timed from an idle session.

    .venv/bin/python benchmarks/pickup.py [--samples N]

A pickup (``queue.py``, ``peers.py``) starts with the enqueue call in a session
that has been idle (a web request's) and ends once a worker, woken by the
NOTIFY, has claimed the job in a session of its own that was idle too. Each
statement is timed here after a pause of 50 to 150 ms, as the pickup benchmarks
pause between jobs, and again back to back: a round trip (``SELECT 1``), a NOTIFY,
a bare INSERT with its NOTIFY committed durably, our enqueue of a new record's
job, a one-row UPDATE whose commit does not wait for the disk, our claim, and
our claim of the notified job by its id (the payload could carry it). The sum
of the enqueue and the claim bounds our pickup from below, whatever the worker
does between them (``peers.py``: about 0.1 ms).

A fresh database of its own on 127.0.0.1:5432 as ``postgres``, dropped at the end.
"""

from __future__ import annotations

import _script  # noqa: F401  first of all: it fixes sys.path

# isort: split
import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

from benchmarks.databases import postgres_admin

GOAL_MS = 2.0  # issue 17: pickup p50 from the enqueue call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    name = f"attachments_bench_pickup_{os.getpid()}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            ATTACHMENTS_BENCH_DB="postgres",
            ATTACHMENTS_BENCH_PG_NAME=name,
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        report(measure(args.samples), args.samples)
    finally:
        from django.db import connections

        connections.close_all()
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(samples: int) -> dict[str, tuple[float, float]]:
    """(idle p50, back-to-back p50) in ms of each step."""
    from django.db import connection

    from attachments import queue
    from attachments.claims import for_database
    from attachments.claims.postgresql import CHANNEL

    claimer = for_database("default")
    waiting: list[int] = []  # jobs queued for the claims to take
    taken: list[int] = []

    def sql(statement: str, params: list[object] | None = None) -> Callable[[], None]:
        def run() -> None:
            with connection.cursor() as cursor:
                cursor.execute(statement, params or [])

        return run

    def enqueue() -> None:
        key = f"k{time.monotonic_ns()}"
        waiting.append(
            queue.enqueue(
                target="bench.item.image", object_id=key, source=key, new_record=True
            ).job.pk
        )

    def claim() -> None:
        job = queue.claim("bench", None)
        assert job is not None
        taken.append(job.pk)

    def claim_by_id() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {claimer.table} SET locked_by = %s, locked_at = now() "
                "WHERE id = %s AND locked_by = '' AND failed_at IS NULL AND "
                "(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL "
                f"RETURNING {claimer.columns}",
                ["bench", waiting[-1]],
            )
            taken.append(claimer.load(cursor.fetchone()).pk)

    def relaxed_update() -> None:
        sql(
            f"UPDATE {claimer.table} SET locked_at = now() WHERE id = %s AND "
            "(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
            [waiting[-1]],
        )()

    insert = (
        f"WITH job AS ({claimer.insert_sql} VALUES ('bench', 0, now(), 'bench.item.image', "
        "'bare', 'bare', '', 0, 1, '', NULL, NULL, '', now()) RETURNING id) "
        "SELECT id, pg_notify(%s, 'bench') FROM job"
    )
    steps: dict[str, tuple[Callable[[], None], Callable[[], None] | None]] = {
        "a round trip (SELECT 1)": (sql("SELECT 1"), None),
        "a NOTIFY": (sql("SELECT pg_notify(%s, 'bench')", [CHANNEL]), None),
        "a bare INSERT and NOTIFY, durable commit": (sql(insert, [CHANNEL]), None),
        "our enqueue, a new record's job": (enqueue, None),
        "a one-row UPDATE, commit not waiting for the disk": (relaxed_update, enqueue),
        "our claim": (claim, enqueue),
        "our claim by the notified job's id": (claim_by_id, enqueue),
    }
    rng = random.Random(42)
    results = {}
    for label, (step, before) in steps.items():
        idle, busy = [], []
        for pause in (True, False):
            for _ in range(samples):
                if before:
                    before()
                if pause:
                    time.sleep(rng.uniform(0.05, 0.15))
                start = time.perf_counter()
                step()
                (idle if pause else busy).append((time.perf_counter() - start) * 1000)
            if taken:
                queue.complete("bench", taken)
                taken.clear()
        results[label] = (statistics.median(idle), statistics.median(busy))
    return results


def report(results: dict[str, tuple[float, float]], samples: int) -> None:
    print(f"\nA pickup's statements on PostgreSQL, p50 of {samples} each, ms")
    print(f"(load average {os.getloadavg()[0]:.1f})\n")
    header = f"{'statement':52}{'from an idle session':>22}{'back to back':>14}"
    print(header)
    print("-" * len(header))
    for label, (idle, busy) in results.items():
        print(f"{label:52}{idle:22.2f}{busy:14.2f}")
    least = results["our enqueue, a new record's job"][0] + results["our claim"][0]
    print(
        f"\nOur enqueue and claim, each from an idle session: {least:.2f} ms, against the "
        f"{GOAL_MS} ms goal for the whole pickup"
    )


if __name__ == "__main__":
    main()
