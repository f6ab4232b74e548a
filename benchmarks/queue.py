"""Benchmark of the job queue on PostgreSQL, MariaDB and SQLite.

    .venv/bin/python benchmarks/queue.py [--quick] [--db sqlite|postgres|mariadb|all]
        [--conn-max-age SECONDS|none] [--relaxed-commit] [--no-engines] [--no-peers]

One run prints, for each database, one table:

1. the enqueue rate of ``queue.enqueue()`` (one call each, replacing the
   record's older jobs: one statement on PostgreSQL, a transaction elsewhere),
   on an empty table and with the largest backlog; the bulk enqueue of
   ``queue.enqueue_missing()`` in batches of 500 (as ``reprocess_attachments``
   queues); and the rate of the INSERT ... SELECT that builds the backlogs;
2. no-op job throughput of 1 and of 4 worker *processes* (multiprocessing,
   spawn; each runs ``Worker(run=noop)``, a non-burst worker with default
   settings, stopped once the jobs are counted; the worker deletes each
   done job in its next claim statement), taking a fixed number of jobs from the front of
   backlogs of 1k, 100k and 1M rows (1k/100k with ``--quick``), so that the
   large backlogs measure the cost of a claim at that size, not a full drain;
   each backlog lives in a database of its own and the sizes take turns in
   short segments, so that a busy machine's drift hits them alike;
3. enqueue-to-start latency (p50/p99) with one idle worker process, jobs
   enqueued one at a time (a new record's, as an upload sends) with random
   50-150 ms gaps, from the enqueue call and from its return;
4. the CPU that worker uses while idle (user+sys from /proc/<pid>/stat over
   wall time), with the statements it sends;
5. the plan of the claim statement at the largest backlog (PostgreSQL
   ``EXPLAIN (ANALYZE, BUFFERS)``, MariaDB ``ANALYZE`` of the locking SELECT,
   SQLite ``EXPLAIN QUERY PLAN``), for the very SQL ``queue.claim`` sends,
   captured with ``connection.execute_wrapper``;

then the project's targets next to the measured figures, PASS or MISS, and
then, on PostgreSQL, the enqueue (one call), drain and pickup of the peer queues,
procrastinate, django-tasks-db and RQ, each with its own worker, beside ours,
and the targets against them (``benchmarks/peers.py``; ``pip install -e
'.[bench]'``), and
last the no-op jobs/s through each task engine (RQ, Celery, django-tasks-db)
beside our own worker, one process each, on a fresh database of each kind
(``benchmarks/engines.py``; engines whose package or broker is missing say so).

Each database engine is benchmarked by a driver subprocess; the settings
module, ``benchmarks/settings.py``, reads the databases from the environment,
which the worker processes inherit. PostgreSQL and MariaDB get databases of
their own (``attachments_bench_<pid>_backlog_<size>``; MariaDB from
``MYSQL_HOST``/``MYSQL_PORT``/``MYSQL_USER``/``MYSQL_PASSWORD``, by default
root on 127.0.0.1:3306, its server settings as they are), SQLite files in a temporary
directory (WAL journal, set once per file; ``synchronous`` stays at its
default, FULL); all are removed at the end, also on Ctrl-C or SIGTERM. Every
wait is bounded (a full run takes 4-8 minutes on 2 cores, ``--quick`` 1-2), so
a run stops by itself. ``--conn-max-age`` and ``--relaxed-commit`` are what-ifs
(see ``--help``); without them Django's and the databases' defaults apply.
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import argparse
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import engines, peers
from benchmarks.databases import mariadb_params

SETTINGS = "benchmarks.settings"
PG_PARAMS = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
}
TARGETS = ("shop.product.photo", "blog.post.cover", "accounts.profile.avatar")

# Targets of the project, checked (not asserted) at the end.
MIN_RATE_ONE_PROCESS = 1000.0  # no-op jobs/s, one worker process, every database
MAX_BACKLOG_SLOWDOWN = 0.10  # largest-backlog throughput within 10% of the 1k one
# An idle MariaDB worker polls every 50 ms; PostgreSQL and SQLite ones are woken.
# From the enqueue call (a new record's, what an upload sends), its commit included.
MAX_P50_MS = {"postgres": 2.0, "mariadb": 60.0, "sqlite": 10.0}
MIN_BULK_RATE = {"postgres": 20_000.0}  # queue.enqueue_missing, jobs/s
MIN_DRAIN_LEAD = 5.0  # our one-process drain over the best peer's (benchmarks/peers.py)
MAX_IDLE_CORES = {"postgres": 0.02, "mariadb": 0.05, "sqlite": 0.02}
DATABASE_ENV = {
    "postgres": "ATTACHMENTS_BENCH_PG_NAME",
    "mariadb": "ATTACHMENTS_BENCH_MARIADB_NAME",
    "sqlite": "ATTACHMENTS_BENCH_SQLITE",
}
NAMES = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "sqlite": "SQLite"}


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Plan: what a run measures.
# ---------------------------------------------------------------------------


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "sizes": [1_000, 100_000],
            "jobs": 1_600,  # per throughput figure, in `segments` interleaved parts
            "segments": 4,
            "segment_cap": 1.5,  # seconds at most per part
            "enqueues": 200,
            "bulk_batches": 20,
            "samples": 50,
            "idle": 5.0,
            "driver_timeout": 110.0,
        }
    return {
        "sizes": [1_000, 100_000, 1_000_000],
        "jobs": 10_000,
        "segments": 20,
        "segment_cap": 3.0,
        "enqueues": 1_000,
        "bulk_batches": 100,
        "samples": 200,
        "idle": 10.0,
        "driver_timeout": 420.0,
    }


PROCESS_COUNTS = (1, 4)
DUE_SHARE = 0.85  # of a backlog's rows, see Driver.build_backlog


def alias_for(size: int, sizes: list[int]) -> str:
    """The largest backlog lives in "default" (queue.claim and enqueue use it), others apart."""
    return "default" if size == max(sizes) else f"backlog_{size}"


# ---------------------------------------------------------------------------
# Worker processes (started with spawn; they import this file as __mp_main__).
# ---------------------------------------------------------------------------


class _Shared:
    """What the no-op job of a worker process needs; set in each child."""

    count: Any = None  # Value('q'): jobs done in this round, all processes of the pool
    target: Any = None  # RawValue('q'): jobs to count before the round ends
    end: Any = None  # RawValue('d'): monotonic time the target was reached
    done: Any = None  # Event
    starts: Any = None  # Queue of (job id, monotonic time) for the latency test


def _setup_django(database: str, counts: Any) -> None:
    """Set Django up on ``database`` (a name or a path), counting statements and connections."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    os.environ[DATABASE_ENV[os.environ.get("ATTACHMENTS_BENCH_DB", "sqlite")]] = database
    os.environ.pop("ATTACHMENTS_BENCH_ALIASES", None)
    import django

    django.setup()
    from django.db import connections
    from django.db.backends.signals import connection_created

    # counts[0]: statements sent through Django, counts[1]: connections opened.
    # The waiter's LISTEN connection is opened beside Django and not counted.
    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        counts[1] += 1

    def count_query(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        counts[0] += 1
        return execute(sql, params, many, context)

    connection_created.connect(on_connect, weak=False)
    connections["default"].execute_wrappers.append(count_query)
    connections["default"].ensure_connection()


def _noop(job: Any) -> Any:
    from attachments import processing

    with _Shared.count.get_lock():
        _Shared.count.value += 1
        n = _Shared.count.value
    if n == _Shared.target.value:
        _Shared.end.value = time.monotonic()
        _Shared.done.set()
    return processing.Outcome.READY


def _record_start(job: Any) -> Any:
    from attachments import processing

    _Shared.starts.put((job.pk, time.monotonic()))
    return processing.Outcome.READY


def _stop_on(event: Any, worker: Any) -> None:
    event.wait()
    worker.stop()


def throughput_child(
    database: str, conn: Any, count: Any, target: Any, end: Any, done: Any, counts: Any
) -> None:
    """On each "go", run a worker until ``done``; report the jobs it ran."""
    _setup_django(database, counts)
    from django.db import connections

    from attachments.worker import Worker

    _Shared.count, _Shared.target, _Shared.end, _Shared.done = count, target, end, done
    conn.send("ready")
    while conn.recv() == "go":
        worker = Worker(run=_noop)  # every queue, default poll interval, one job at a time
        threading.Thread(target=_stop_on, args=(done, worker), daemon=True).start()
        stats = worker.run()
        conn.send(stats.processed)
    connections.close_all()


def latency_child(database: str, conn: Any, starts: Any, stop: Any, counts: Any) -> None:
    """An idle worker with its defaults that reports when each job starts."""
    _setup_django(database, counts)
    from django.db import connections

    from attachments.worker import Worker

    _Shared.starts = starts
    worker = Worker(run=_record_start)
    threading.Thread(target=_stop_on, args=(stop, worker), daemon=True).start()
    conn.send("ready")
    stats = worker.run()
    conn.send(stats.processed)
    connections.close_all()


def _percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": statistics.median(values),
        "p90": cuts[89],
        "p99": cuts[98],
        "min": min(values),
        "max": max(values),
    }


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# The driver: one database engine, Django set up for it.
# ---------------------------------------------------------------------------


class Pool:
    """Worker processes on one backlog's database, idle between rounds."""

    def __init__(self, ctx: Any, database: str, processes: int) -> None:
        self.count = ctx.Value("q", 0)
        self.target = ctx.RawValue("q", 0)
        self.end = ctx.RawValue("d", 0.0)
        self.done = ctx.Event()
        self.procs: list[tuple[Any, Any, Any]] = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            counts = ctx.RawArray("q", 2)
            args = (database, child, self.count, self.target, self.end, self.done, counts)
            proc = ctx.Process(target=throughput_child, args=args, daemon=True)
            proc.start()
            self.procs.append((proc, parent, counts))

    def wait_ready(self) -> None:
        for proc, parent, _ in self.procs:
            if not parent.poll(120) or parent.recv() != "ready":
                raise RuntimeError(f"worker process {proc.pid} did not start")

    def counters(self) -> tuple[int, int]:
        return (
            sum(counts[0] for _, _, counts in self.procs),
            sum(counts[1] for _, _, counts in self.procs),
        )

    def drain(self, jobs: int, budget: float) -> dict[str, Any]:
        """Let the workers run ``jobs`` jobs, at most ``budget`` seconds; time "go" to last job."""
        self.count.value = 0
        self.target.value = jobs
        self.end.value = 0.0
        self.done.clear()
        queries, connects = self.counters()
        start = time.monotonic()
        for _, parent, _ in self.procs:
            parent.send("go")
        finished = self.done.wait(budget)
        if not finished:
            self.done.set()
        stop = self.end.value if finished else time.monotonic()
        counted = jobs if finished else self.count.value
        processed = 0
        for proc, parent, _ in self.procs:
            if not parent.poll(60):
                raise RuntimeError(f"worker process {proc.pid} did not stop")
            processed += parent.recv()
        queries_after, connects_after = self.counters()
        return {
            "jobs": counted,
            "seconds": stop - start,
            "processed": processed,
            "queries": queries_after - queries,
            "connects": connects_after - connects,
            "capped": not finished,
        }

    def close(self) -> None:
        for _, parent, _ in self.procs:
            with contextlib.suppress(OSError):
                parent.send("quit")
        for proc, _, _ in self.procs:
            proc.join(15)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


class Driver:
    def __init__(self, db: str, quick: bool, out: str) -> None:
        self.db = db
        self.plan = plan(quick)
        self.out = out
        self.results: dict[str, Any] = {"db": db, "plan": self.plan, "errors": []}
        self.ctx = multiprocessing.get_context("spawn")
        sizes = self.plan["sizes"]
        self.aliases = {size: alias_for(size, sizes) for size in sizes}
        self.due: dict[int, int] = {}  # due rows left in each backlog

    # -- helpers ------------------------------------------------------------

    def save(self) -> None:
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.results, f)
        os.replace(tmp, self.out)

    def sql(self, statement: str, params: Any = None, using: str = "default") -> list[tuple]:
        from django.db import connections

        with connections[using].cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def database(self, using: str) -> str:
        from django.db import connections

        return str(connections[using].settings_dict["NAME"])

    def clear(self, using: str = "default") -> None:
        if self.db in ("postgres", "mariadb"):
            self.sql("TRUNCATE attachments_job", using=using)
        else:
            self.sql("DELETE FROM attachments_job", using=using)

    def vacuum(self, using: str = "default", analyze: bool = False) -> None:
        """What autovacuum does to a table that changed; on MariaDB, statistics only."""
        if self.db == "postgres":
            self.sql(f"VACUUM {'ANALYZE ' if analyze else ''}attachments_job", using=using)
        elif self.db == "mariadb" and analyze:
            self.sql("ANALYZE TABLE attachments_job", using=using)

    def build_backlog(self, rows: int, using: str = "default") -> float:
        """Insert ``rows`` job rows in one statement; return the seconds it took.

        Row i is failed when i % 10 == 3 (10%), a retry scheduled in the future
        when i % 20 == 7 (5%), and otherwise due, run_at in the past increasing
        with i (85%). Three targets, a distinct object id per row.
        """
        start = time.perf_counter()
        error = "Traceback (most recent call last):\n  ...\nOSError: image file is truncated"
        if self.db == "postgres":
            self.sql(
                """
                INSERT INTO attachments_job (queue, priority, run_at, target, object_id,
                    source, previous, attempts, max_attempts, locked_by, locked_at,
                    failed_at, last_error, created_at)
                SELECT 'default', 0,
                    CASE WHEN i %% 20 = 7 THEN now() + interval '1 hour' + i * interval '1 ms'
                         ELSE b.base + i * interval '1 ms' END,
                    (ARRAY[%s, %s, %s])[i %% 3 + 1],
                    (1000000000 + i)::text,
                    'attachments-staging/' || md5(i::text) || '.jpg',
                    CASE WHEN i %% 4 = 0 THEN 'photos/' || md5((-i)::text) || '.jpg'
                         ELSE '' END,
                    CASE WHEN i %% 10 = 3 THEN 10 WHEN i %% 20 = 7 THEN 1 + i %% 3 ELSE 0 END,
                    10, '', NULL,
                    CASE WHEN i %% 10 = 3 THEN b.base + i * interval '1 ms' END,
                    CASE WHEN i %% 10 = 3 OR i %% 20 = 7 THEN %s ELSE '' END,
                    b.base + i * interval '1 ms'
                FROM generate_series(1, %s) AS i,
                    (SELECT now() - interval '1 minute' - %s * interval '1 ms' AS base) AS b
                """,
                [*TARGETS, error, rows, rows],
                using=using,
            )
        elif self.db == "mariadb":
            # MariaDB's sequence engine makes the rows; naive UTC, as Django stores them.
            self.sql(
                f"""
                INSERT INTO attachments_job (queue, priority, run_at, target, object_id,
                    source, previous, attempts, max_attempts, locked_by, locked_at,
                    failed_at, last_error, created_at)
                SELECT 'default', 0,
                    CASE WHEN seq %% 20 = 7
                         THEN UTC_TIMESTAMP(6) + INTERVAL 1 HOUR + INTERVAL seq * 1000 MICROSECOND
                         ELSE b.base + INTERVAL seq * 1000 MICROSECOND END,
                    ELT(seq %% 3 + 1, %s, %s, %s),
                    CAST(1000000000 + seq AS CHAR),
                    CONCAT('attachments-staging/', MD5(seq), '.jpg'),
                    IF(seq %% 4 = 0, CONCAT('photos/', MD5(-seq), '.jpg'), ''),
                    CASE WHEN seq %% 10 = 3 THEN 10 WHEN seq %% 20 = 7 THEN 1 + seq %% 3
                         ELSE 0 END,
                    10, '', NULL,
                    CASE WHEN seq %% 10 = 3 THEN b.base + INTERVAL seq * 1000 MICROSECOND END,
                    CASE WHEN seq %% 10 = 3 OR seq %% 20 = 7 THEN %s ELSE '' END,
                    b.base + INTERVAL seq * 1000 MICROSECOND
                FROM seq_1_to_{int(rows)},
                    (SELECT UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE
                        - INTERVAL {int(rows) * 1000} MICROSECOND AS base) AS b
                """,
                [*TARGETS, error],
                using=using,
            )
        else:
            # Text as Django stores datetimes in SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC.
            base = time.time() - 60 - rows / 1000
            stamp = "strftime('%Y-%m-%d %H:%M:%f', {}, 'unixepoch') || '000'"
            past = stamp.format(f"{base!r} + i * 0.001")
            future = stamp.format(f"{time.time() + 3600!r} + i * 0.001")
            self.sql(
                f"""
                WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s)
                INSERT INTO attachments_job (queue, priority, run_at, target, object_id,
                    source, previous, attempts, max_attempts, locked_by, locked_at,
                    failed_at, last_error, created_at)
                SELECT 'default', 0,
                    CASE WHEN i % 20 = 7 THEN {future} ELSE {past} END,
                    CASE i % 3 WHEN 0 THEN %s WHEN 1 THEN %s ELSE %s END,
                    CAST(1000000000 + i AS TEXT),
                    'attachments-staging/' || lower(hex(randomblob(16))) || '.jpg',
                    CASE WHEN i % 4 = 0 THEN 'photos/' || lower(hex(randomblob(16))) || '.jpg'
                         ELSE '' END,
                    CASE WHEN i % 10 = 3 THEN 10 WHEN i % 20 = 7 THEN 1 + i % 3 ELSE 0 END,
                    10, '', NULL,
                    CASE WHEN i % 10 = 3 THEN {past} END,
                    CASE WHEN i % 10 = 3 OR i % 20 = 7 THEN %s ELSE '' END,
                    {past}
                FROM s
                """,
                [rows, *TARGETS, error],
                using=using,
            )
        return time.perf_counter() - start

    def count_due(self, using: str = "default") -> int:
        from django.utils import timezone

        from attachments.models import Job

        return Job.objects.using(using).pending().filter(run_at__lte=timezone.now()).count()

    def rebuild(self, size: int) -> float:
        alias = self.aliases[size]
        self.clear(alias)
        self.vacuum(alias)
        seconds = self.build_backlog(size, alias)
        self.vacuum(alias, analyze=True)
        self.due[size] = self.count_due(alias)
        return seconds

    # -- measurements -------------------------------------------------------

    def describe(self) -> None:
        from django.db import connection

        from attachments.conf import conf

        if self.db == "postgres":
            version = self.sql("SHOW server_version")[0][0]
            sync = self.sql("SHOW synchronous_commit")[0][0]
            self.results["version"] = f"PostgreSQL {version}"
            config = f"synchronous_commit={sync}, LISTEN/NOTIFY wake-ups"
        elif self.db == "mariadb":
            ((version, flush, isolation),) = self.sql(
                "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@tx_isolation"
            )
            self.results["version"] = f"MariaDB {version}"
            waits = "each commit waits for the disk" if flush == 1 else "commits do not wait"
            config = (
                f"innodb_flush_log_at_trx_commit={flush} ({waits}), "
                f"{isolation} (Django's default), polling"
            )
        else:
            import sqlite3

            journal = self.sql("PRAGMA journal_mode")[0][0]
            sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
                self.sql("PRAGMA synchronous")[0][0]
            ]
            self.results["version"] = f"SQLite {sqlite3.sqlite_version}"
            config = f"journal_mode={journal}, synchronous={sync}, transaction_mode=IMMEDIATE"
        max_age = connection.settings_dict["CONN_MAX_AGE"]
        self.results["config"] = (
            f"{config}, POLL_INTERVAL={conf.POLL_INTERVAL}s, CONN_MAX_AGE={max_age}"
        )

    def enqueue_rate(self, key: str, n: int) -> None:
        from attachments import queue

        start = time.perf_counter()
        for i in range(n):
            queue.enqueue(
                target=TARGETS[i % 3],
                object_id=2_000_000_000 + i,
                source=f"attachments-staging/{uuid.uuid4().hex}.jpg",
            )
        seconds = time.perf_counter() - start
        self.results[key] = {"jobs": n, "seconds": seconds, "rate": n / seconds}
        log(f"enqueue ({key}): {n / seconds:,.0f} jobs/s")

    def bulk_enqueue_rate(self, batches: int) -> None:
        """``queue.enqueue_missing`` in batches of 500, as ``reprocess_attachments`` queues."""
        from attachments import queue

        batch, start = 500, time.perf_counter()
        for b in range(batches):
            first = 4_000_000_000 + b * batch
            queue.enqueue_missing(
                target=TARGETS[b % 3],
                sources=[(i, f"photos/{i}.jpg") for i in range(first, first + batch)],
            )
        seconds = time.perf_counter() - start
        jobs = batches * batch
        self.results["enqueue_bulk"] = {"jobs": jobs, "seconds": seconds, "rate": jobs / seconds}
        log(f"bulk enqueue: {jobs / seconds:,.0f} jobs/s")

    def segment(self, size: int, processes: int, pool: Pool) -> None:
        """Run one part of a throughput figure: jobs/segments jobs, or segment_cap seconds."""
        want = self.plan["jobs"] // self.plan["segments"]
        cap = self.plan["segment_cap"]
        rounds: list[dict[str, Any]] = []
        counted, spent = 0, 0.0
        while counted < want and spent < cap:
            if self.due[size] < min(want - counted, int(size * DUE_SHARE)):
                self.rebuild(size)  # a small backlog used up: build it again, untimed
            result = pool.drain(min(want - counted, self.due[size]), cap - spent)
            self.due[size] -= result["processed"]
            rounds.append(result)
            counted += result["jobs"]
            spent += result["seconds"]
        self.vacuum(self.aliases[size])
        figure = self.results.setdefault("throughput", {}).setdefault(str(size), {})
        total = figure.setdefault(
            str(processes),
            {
                "jobs": 0,
                "seconds": 0.0,
                "processed": 0,
                "queries": 0,
                "connects": 0,
                "rounds": 0,
                "capped": False,
                "segments": [],
            },
        )
        for key in ("jobs", "seconds", "processed", "queries", "connects"):
            total[key] += sum(r[key] for r in rounds)
        total["rounds"] += len(rounds)
        total["capped"] = total["capped"] or any(r["capped"] for r in rounds)
        total["segments"].append(counted / spent)
        total["rate"] = total["jobs"] / total["seconds"]

    def throughput(self, processes: int) -> None:
        """Every backlog's figure for ``processes`` workers, in interleaved segments."""
        sizes = self.plan["sizes"]
        pools: dict[int, Pool] = {}
        try:
            for size in sizes:
                pools[size] = Pool(self.ctx, self.database(self.aliases[size]), processes)
            for pool in pools.values():
                pool.wait_ready()
            for part in range(self.plan["segments"]):
                # Alternate the order so a slow drift of the machine hits every size alike.
                for size in sizes if part % 2 == 0 else sizes[::-1]:
                    self.segment(size, processes, pools[size])
                self.save()
        finally:
            for pool in pools.values():
                pool.close()
        for size in sizes:
            t = self.results["throughput"][str(size)][str(processes)]
            n = max(t["processed"], 1)
            log(
                f"backlog {size:,}, {processes} process(es): {t['rate']:,.0f} jobs/s "
                f"({t['jobs']:,} jobs in {t['seconds']:.2f}s, segments "
                f"{min(t['segments']):,.0f}-{max(t['segments']):,.0f}; "
                f"{t['queries'] / n:.2f} statements, {t['connects'] / n:.2f} connections per job)"
            )

    def capture_claim(self, queues: tuple[str, ...]) -> tuple[str, Any]:
        """The statement of ``queue.claim`` that finds the row, caught on its way to the database.

        The one UPDATE elsewhere; on MariaDB the SELECT ... FOR UPDATE SKIP LOCKED.
        """
        from django.db import connection, transaction

        from attachments import queue

        captured: list[tuple[str, Any]] = []

        def capture(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
            captured.append((sql, params))
            return execute(sql, params, many, context)

        with transaction.atomic():
            with connection.execute_wrapper(capture):
                queue.claim("benchmark-explain", queues)
            transaction.set_rollback(True)
        verb = "SELECT" if self.db == "mariadb" else "UPDATE"
        (claim,) = [c for c in captured if c[0].lstrip().upper().startswith(verb)]
        return claim

    def explain(self, size: int) -> None:
        from django.db import connection, transaction

        plans = {}
        for label, queues in (
            ("every queue (the worker's default)", ()),
            ("queue 'default'", ("default",)),
        ):
            sql, params = self.capture_claim(queues)
            with transaction.atomic(), connection.cursor() as cursor:
                if self.db == "postgres":
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    lines = [row[0] for row in cursor.fetchall()]
                elif self.db == "mariadb":
                    cursor.execute("ANALYZE " + sql, params)
                    columns = [column[0] for column in cursor.description]
                    lines = [
                        ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True))
                        for row in cursor.fetchall()
                    ]
                else:
                    cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                    depth: dict[int, int] = {0: -1}
                    lines = []
                    for node, parent, _, detail in cursor.fetchall():
                        depth[node] = depth.get(parent, -1) + 1
                        lines.append("  " * depth[node] + detail)
                transaction.set_rollback(True)  # EXPLAIN ANALYZE did claim a job
            plans[label] = {"sql": sql, "params": [str(p) for p in params], "plan": lines}
        self.results["explain"] = {"size": size, "plans": plans}
        log("captured and explained the claim statement")

    def round_trips(self, size: int) -> None:
        """One connection in this process: what each statement of a job costs."""
        from django.db import connection

        from attachments import queue

        worker = "benchmark-round-trip"
        claims, completes, folded, connects = [], [], [], []
        for _ in range(300):
            t0 = time.perf_counter()
            job = queue.claim(worker, ())
            t1 = time.perf_counter()
            queue.complete(worker, [job.pk])
            t2 = time.perf_counter()
            claims.append(t1 - t0)
            completes.append(t2 - t1)
        # As a busy worker runs: each claim also deletes the job before it.
        job = queue.claim(worker, ())
        for _ in range(300):
            t0 = time.perf_counter()
            job = queue.claim(worker, (), finished=[job.pk])
            folded.append(time.perf_counter() - t0)
        queue.complete(worker, [job.pk])
        self.due[size] -= 601
        for _ in range(50):
            connection.close()
            t0 = time.perf_counter()
            connection.ensure_connection()
            connects.append(time.perf_counter() - t0)
        self.results["round_trips"] = {
            "size": size,
            "claim_ms": statistics.median(claims) * 1000,
            "complete_ms": statistics.median(completes) * 1000,
            "claim_finishing_ms": statistics.median(folded) * 1000,
            "connect_ms": statistics.median(connects) * 1000,
        }
        log(f"one connection at {size:,}: {self.results['round_trips']}")

    def latency_and_idle(self) -> None:
        from attachments import queue

        ctx = self.ctx
        starts, stop = ctx.Queue(), ctx.Event()
        counts = ctx.RawArray("q", 2)
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=latency_child,
            args=(self.database("default"), child, starts, stop, counts),
            daemon=True,
        )
        proc.start()
        try:
            if not parent.poll(120) or parent.recv() != "ready":
                raise RuntimeError("the idle worker did not start")
            time.sleep(2.0)  # into its idle loop
            # Idle CPU.
            cpu0, wall0, counts0 = _cpu_seconds(proc.pid), time.monotonic(), tuple(counts)
            time.sleep(self.plan["idle"])
            cpu1, wall1, counts1 = _cpu_seconds(proc.pid), time.monotonic(), tuple(counts)
            wall = wall1 - wall0
            self.results["idle"] = {
                "seconds": wall,
                "cpu": cpu1 - cpu0,
                "cores": (cpu1 - cpu0) / wall,
                "queries_per_s": (counts1[0] - counts0[0]) / wall,
                "connects_per_s": (counts1[1] - counts0[1]) / wall,
            }
            log(f"idle worker: {self.results['idle']}")
            self.save()
            # Enqueue-to-start latency of what a new upload sends (a new
            # record's job), from the moment enqueue() is called (its whole
            # commit included) and from the moment it returns (the commit time
            # as the caller knows it; a busy machine can delay it past the
            # worker's start).
            rng = random.Random(42)
            from_call, from_return, missing = [], [], 0
            for i in range(self.plan["samples"]):
                time.sleep(rng.uniform(0.05, 0.15))
                called = time.monotonic()
                enqueued = queue.enqueue(
                    target=TARGETS[i % 3],
                    object_id=3_000_000_000 + i,
                    source=f"attachments-staging/{uuid.uuid4().hex}.jpg",
                    new_record=True,
                )
                returned = time.monotonic()
                deadline = returned + 5
                while True:
                    try:
                        pk, started = starts.get(timeout=max(deadline - time.monotonic(), 0))
                    except Exception:  # queue.Empty: not picked up within 5 s
                        missing += 1
                        break
                    if pk == enqueued.job.pk:
                        from_call.append((started - called) * 1000)
                        from_return.append((started - returned) * 1000)
                        break
            self.results["latency"] = {
                "samples": len(from_call),
                "missing": missing,
                **_percentiles(from_call),
                "from_return": _percentiles(from_return),
            }
            log(f"pickup latency: {self.results['latency']}")
        finally:
            stop.set()
            proc.join(15)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    # -- the whole run ------------------------------------------------------

    def run(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        sizes = self.plan["sizes"]
        big = max(sizes)
        for alias in self.aliases.values():
            if self.db == "sqlite":
                # Stored in the file, so every process uses it.
                self.sql("PRAGMA journal_mode=WAL", using=alias)
            call_command("migrate", database=alias, verbosity=0)
        self.describe()
        self.save()

        self.enqueue_rate("enqueue_empty", self.plan["enqueues"])
        self.bulk_enqueue_rate(self.plan["bulk_batches"])
        self.save()

        for size in sizes:
            seconds = self.rebuild(size)
            self.results.setdefault("bulk", {})[str(size)] = {
                "rows": size,
                "seconds": seconds,
                "rate": size / seconds,
            }
            log(f"built a backlog of {size:,} rows in {seconds:.2f}s")
        self.explain(big)
        self.round_trips(big)
        self.vacuum(self.aliases[big])
        self.save()

        connections.close_all()  # the driver holds no connection while workers run
        for processes in PROCESS_COUNTS:
            self.throughput(processes)
            self.save()

        self.enqueue_rate("enqueue_backlog", self.plan["enqueues"])
        self.results["enqueue_backlog"]["size"] = big
        self.save()

        self.clear()
        self.vacuum()
        self.latency_and_idle()
        self.save()
        connections.close_all()


def driver_main(args: argparse.Namespace) -> int:
    driver = Driver(args.driver, args.quick, args.out)
    try:
        driver.run()
    except BaseException as exc:
        driver.results["errors"].append(f"{type(exc).__name__}: {exc}")
        driver.save()
        raise
    return 0


# ---------------------------------------------------------------------------
# The orchestrator: databases, drivers, report.
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def databases(db: str, sizes: list[int]) -> Iterator[dict[str, str]]:
    """Create the benchmark's own databases; yield the environment naming them; drop them.

    One database per backlog, so that backlogs of every size exist at once and
    their measurements can be interleaved; the largest is "default".
    """
    env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "ATTACHMENTS_BENCH_DB": db}
    names = {alias_for(size, sizes): f"backlog_{size}" for size in sizes}
    if db == "sqlite":
        directory = tempfile.mkdtemp(prefix="attachments-bench-")
        paths = {alias: os.path.join(directory, f"{name}.sqlite3") for alias, name in names.items()}
        env["ATTACHMENTS_BENCH_SQLITE"] = paths.pop("default")
        env["ATTACHMENTS_BENCH_ALIASES"] = json.dumps(paths)
        try:
            yield env
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    prefix = f"attachments_bench_{os.getpid()}"
    created = {alias: f"{prefix}_{name}" for alias, name in names.items()}
    admin, error = server_admin(db)
    quote, force = ('"', " WITH (FORCE)") if db == "postgres" else ("`", "")
    try:
        for name in created.values():
            admin.execute(f"DROP DATABASE IF EXISTS {quote}{name}{quote}")
            admin.execute(f"CREATE DATABASE {quote}{name}{quote}")
        env[DATABASE_ENV[db]] = created["default"]
        env["ATTACHMENTS_BENCH_ALIASES"] = json.dumps(
            {alias: name for alias, name in created.items() if alias != "default"}
        )
        yield env
    finally:
        for name in created.values():
            with contextlib.suppress(error):
                admin.execute(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}")
        admin.close()


def server_admin(db: str) -> tuple[Any, type[Exception]]:
    """An autocommit connection to the ``db`` server (no database), and the driver's error."""
    if db == "postgres":
        import psycopg

        return (
            psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG_PARAMS),
            psycopg.Error,
        )
    import MySQLdb

    # Autocommit is the server's default; a cursor of its own runs each statement.
    return MySQLdb.connect(connect_timeout=5, **mariadb_params()).cursor(), MySQLdb.Error


def run_driver(db: str, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    out_dir = tempfile.mkdtemp(prefix="attachments-bench-out-")
    out = os.path.join(out_dir, "result.json")
    try:
        with databases(db, plan(args.quick)["sizes"]) as env:
            command = [sys.executable, os.path.abspath(__file__), "--driver", db, "--out", out]
            if args.quick:
                command.append("--quick")
            # Own session, so that on timeout the driver and its workers go together.
            proc = subprocess.Popen(
                command, env={**os.environ, **env}, cwd=_script.ROOT, start_new_session=True
            )
            try:
                proc.wait(timeout)
            except BaseException as exc:  # the time limit, Ctrl-C, SIGTERM
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if not isinstance(exc, subprocess.TimeoutExpired):
                    raise
                log(f"{db}: stopped after {timeout:.0f}s; reporting what was measured")
            try:
                with open(out) as f:
                    results = json.load(f)
            except (OSError, ValueError):
                results = {"db": db, "errors": []}
            if proc.returncode:
                results.setdefault("errors", []).append(
                    f"driver exited with status {proc.returncode}"
                )
            return results
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def code_version() -> str:
    """The commit and the uncommitted changes measured (the tree changes under us)."""
    import hashlib

    # The modules a no-op job goes through, and the table's migrations.
    app = os.path.join(_script.ROOT, "attachments")
    names = ["conf", "models", "processing", "queue", "routing", "stats", "wakeup", "worker"]
    paths = [os.path.join(app, f"{name}.py") for name in names]
    migrations = os.path.join(app, "migrations")
    if os.path.isdir(migrations):
        paths += [os.path.join(migrations, f) for f in sorted(os.listdir(migrations))]
    digest = hashlib.sha1()
    for path in paths:
        if path.endswith(".py") and os.path.isfile(path):
            with open(path, "rb") as f:
                digest.update(os.path.basename(path).encode() + f.read())
    try:
        head = subprocess.run(
            ["git", "-C", _script.ROOT, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", _script.ROOT, "status", "--porcelain", "--", "attachments"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        head, changed = "?", []
    files = [line[3:] for line in changed if line.strip()]
    local = f" + uncommitted {', '.join(files)}" if files else ""
    return f"git {head or '?'}{local} (queue code sha1 {digest.hexdigest()[:10]})"


def server_available(db: str) -> str | None:
    """Why the ``db`` server cannot be used, or None."""
    try:
        admin, _ = server_admin(db)
        admin.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


# -- report -------------------------------------------------------------------


def _size(n: int | str) -> str:
    n = int(n)
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def _get(results: dict[str, Any], *keys: str) -> Any:
    value: Any = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def paired_ratio(r: dict[str, Any], big: str, procs: int) -> float | None:
    """Median of big/1k rates over segments run back to back: robust to a drifting machine."""
    small = _get(r, "throughput", "1000", str(procs), "segments")
    large = _get(r, "throughput", big, str(procs), "segments")
    if not small or not large:
        return None
    return statistics.median(b / s for b, s in zip(large, small, strict=False))


def report(
    all_results: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    code_before: str,
) -> str:
    dbs = list(all_results)
    p = plan(args.quick)
    sizes = [str(s) for s in p["sizes"]]
    big = sizes[-1]
    names = NAMES

    def para(text: str) -> str:
        return textwrap.fill(text, 100, initial_indent="  ", subsequent_indent="    ")

    out = [
        f"django-delayed-attachments queue benchmark ({'quick' if args.quick else 'full'} run, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, 5-min load average "
        f"{load_before[1]:.2f} before / {load_after[1]:.2f} after)"
    ]
    code = code_version()
    if code.rsplit("sha1 ", 1)[-1] != code_before.rsplit("sha1 ", 1)[-1]:
        code = f"CHANGED DURING THE RUN, from {code_before} to {code}"
    out.append(para(f"Code: {code}"))
    for db in dbs:
        r = all_results[db]
        skipped = f"; skipped: {r['skipped']}" if r.get("skipped") else ""
        out.append(para(f"{names[db]}: {r.get('version', '?')}; {r.get('config', '?')}{skipped}"))
    out.append(
        para(
            "Backlogs: each size in a database of its own, built by one INSERT ... SELECT "
            "(PostgreSQL: generate_series, MariaDB: its sequence engine, SQLite: recursive CTE); "
            "queue 'default', 3 targets, a distinct object id per row; 85% due (run_at in the "
            "past), 10% failed, 5% retries scheduled in the future. PostgreSQL: VACUUM ANALYZE "
            "after each build, VACUUM after each segment, as autovacuum would; MariaDB: ANALYZE "
            "TABLE after each build."
        )
    )
    out.append(
        para(
            "Throughput: no-op jobs (one claim each, which also deletes the job before in its "
            "commit: one statement; on MariaDB a transaction of three) taken from the front of "
            "the backlog by 1 or 4 spawned processes, each running Worker(run=noop) with "
            "default settings. "
            f"Each figure is {p['jobs']:,} jobs in {p['segments']} segments of "
            f"{p['jobs'] // p['segments']:,} (a segment stops early after {p['segment_cap']:g}s: "
            "'cap'), the backlog sizes taking turns segment by segment so that the machine's "
            "drift hits them alike; timed from 'go' to the last job counted, the range is that "
            "of the segments' rates. The 1k backlog is rebuilt, untimed, whenever its 850 due "
            "jobs are used up. Paired median: the median over segment pairs (run back to back) "
            "of the large backlog's rate over the 1k one's; the targets use it. Statements are "
            "those sent through Django (SQLite's BEGIN IMMEDIATE included; not PostgreSQL's "
            "BEGIN/COMMIT, nor MariaDB's COMMIT and autocommit switches), connections those "
            "Django opened."
        )
    )
    out.append("")

    def cell(db: str, fn: Callable[[dict[str, Any]], str]) -> str:
        try:
            return fn(all_results[db])
        except (TypeError, KeyError, ZeroDivisionError):
            return "n/a"

    rows: list[list[str]] = []

    def add(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        rows.append([label, *[cell(db, fn) for db in dbs]])

    def throughput(r: dict[str, Any], size: str, procs: int) -> str:
        t = r["throughput"][size][str(procs)]
        cap = ", cap" if t["capped"] else ""
        low, high = min(t["segments"]), max(t["segments"])
        return (
            f"{t['rate']:,.0f} jobs/s ({t['jobs']:,} in {t['seconds']:.1f}s, "
            f"{low:,.0f}-{high:,.0f}{cap})"
        )

    def per_job(r: dict[str, Any], size: str, procs: int) -> str:
        t = r["throughput"][size][str(procs)]
        n = t["processed"]
        return f"{t['queries'] / n:.2f} statements, {t['connects'] / n:.2f} connections"

    def ratio(r: dict[str, Any], procs: int) -> str:
        t = r["throughput"]
        overall = t[big][str(procs)]["rate"] / t["1000"][str(procs)]["rate"]
        return f"{overall:.2f} overall, {paired_ratio(r, big, procs):.2f} paired median"

    add(
        "Enqueue: queue.enqueue(), a transaction each, empty table",
        lambda r: f"{r['enqueue_empty']['rate']:,.0f} jobs/s",
    )
    add(
        f"Enqueue: the same with a {_size(big)} backlog",
        lambda r: f"{r['enqueue_backlog']['rate']:,.0f} jobs/s",
    )
    add(
        "Bulk enqueue: queue.enqueue_missing(), batches of 500",
        lambda r: (
            f"{r['enqueue_bulk']['rate']:,.0f} jobs/s "
            f"({r['enqueue_bulk']['jobs']:,} in {r['enqueue_bulk']['seconds']:.2f}s)"
        ),
    )
    for size in sizes:
        add(
            f"Bulk INSERT ... SELECT of a {_size(size)} backlog",
            lambda r, s=size: (
                f"{r['bulk'][s]['rate']:,.0f} rows/s ({r['bulk'][s]['seconds']:.1f}s)"
            ),
        )
    for procs in PROCESS_COUNTS:
        plural = "es" if procs > 1 else ""
        for size in sizes:
            add(
                f"No-op jobs, {procs} worker process{plural}, {_size(size)} backlog",
                lambda r, s=size, n=procs: throughput(r, s, n),
            )
        add(f"  throughput ratio {_size(big)} / 1k", lambda r, n=procs: ratio(r, n))
        add(f"  per job at {_size(big)}", lambda r, n=procs: per_job(r, big, n))
    add(
        "Pickup latency, idle worker, from the enqueue call (new record): p50 / p99",
        lambda r: f"{r['latency']['p50']:.1f} / {r['latency']['p99']:.1f} ms",
    )
    add(
        "  min / max (samples, not picked up in 5s)",
        lambda r: (
            f"{r['latency']['min']:.1f} / {r['latency']['max']:.1f} ms "
            f"({r['latency']['samples']}, {r['latency']['missing']})"
        ),
    )
    add(
        "  from enqueue() returning: p50 / p99",
        lambda r: (
            f"{r['latency']['from_return']['p50']:.1f} / "
            f"{r['latency']['from_return']['p99']:.1f} ms"
        ),
    )
    add(
        "Idle worker CPU, user+sys / wall",
        lambda r: (
            f"{r['idle']['cores']:.3f} cores "
            f"({r['idle']['cpu']:.2f}s in {r['idle']['seconds']:.0f}s)"
        ),
    )
    add(
        "  idle: statements / connections opened per s",
        lambda r: f"{r['idle']['queries_per_s']:.1f} / {r['idle']['connects_per_s']:.1f}",
    )
    add(
        f"Driver, one connection, {_size(big)}: claim / complete / claim deleting the last job",
        lambda r: "{claim_ms:.2f} / {complete_ms:.2f} / {claim_finishing_ms:.2f} ms".format(
            **r["round_trips"]
        ),
    )
    add(
        "  connect (Django ensure_connection), p50",
        lambda r: f"{r['round_trips']['connect_ms']:.2f} ms",
    )
    out.append(_table(["Measurement", *[names[d] for d in dbs]], rows))
    out.append("")

    # Targets.
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    trows: list[list[str]] = []
    for db in dbs:
        r = all_results[db]
        one = [(_get(r, "throughput", s, "1") or {}).get("rate") for s in sizes]
        if all(v is not None for v in one):
            worst = min(one)
            at = sizes[one.index(worst)]
            trows.append(
                [
                    names[db],
                    f">= {MIN_RATE_ONE_PROCESS:,.0f} jobs/s, 1 process, every backlog",
                    f"{worst:,.0f} jobs/s (lowest, {_size(at)})",
                    verdict(worst >= MIN_RATE_ONE_PROCESS),
                ]
            )
        for procs in PROCESS_COUNTS:
            paired = paired_ratio(r, big, procs)
            trows.append(
                [
                    names[db],
                    f"{_size(big)} throughput >= 90% of 1k, {procs} process"
                    + ("es" if procs > 1 else "")
                    + " (paired median)",
                    f"{paired:.2f}" if paired is not None else "n/a",
                    verdict(None if paired is None else paired >= 1 - MAX_BACKLOG_SLOWDOWN),
                ]
            )
        bulk = _get(r, "enqueue_bulk", "rate")
        if db in MIN_BULK_RATE:
            trows.append(
                [
                    names[db],
                    f"bulk enqueue >= {MIN_BULK_RATE[db]:,.0f} jobs/s",
                    f"{bulk:,.0f} jobs/s" if bulk is not None else "n/a",
                    verdict(None if bulk is None else bulk >= MIN_BULK_RATE[db]),
                ]
            )
        p50 = _get(r, "latency", "p50")
        trows.append(
            [
                names[db],
                f"pickup p50 <= {MAX_P50_MS[db]:g} ms from the enqueue call",
                f"{p50:.1f} ms" if p50 is not None else "n/a",
                verdict(None if p50 is None else p50 <= MAX_P50_MS[db]),
            ]
        )
        cores = _get(r, "idle", "cores")
        trows.append(
            [
                names[db],
                f"idle worker <= {MAX_IDLE_CORES[db]:g} cores",
                f"{cores:.3f} cores" if cores is not None else "n/a",
                verdict(None if cores is None else cores <= MAX_IDLE_CORES[db]),
            ]
        )
    out.append(_table(["Database", "Target", "Measured", "Result"], trows))

    # Plans.
    for db in dbs:
        explain = _get(all_results[db], "explain")
        if not explain:
            continue
        for label, entry in explain["plans"].items():
            kind = {
                "postgres": "EXPLAIN (ANALYZE, BUFFERS)",
                "mariadb": "ANALYZE",
                "sqlite": "EXPLAIN QUERY PLAN",
            }[db]
            out.append("")
            out.append(
                f"{names[db]}, {_size(explain['size'])} backlog, claim from {label}: {kind} of"
            )
            out.append(
                textwrap.fill(entry["sql"], 100, initial_indent="  ", subsequent_indent="  ")
            )
            out.append(f"  params: {entry['params']}")
            out.extend(f"    {line}" for line in entry["plan"])

    for db in dbs:
        for error in all_results[db].get("errors", []):
            out.append(f"\n{names[db]} error: {error}")
    return "\n".join(out)


def peer_targets(measured: dict[str, Any]) -> str:
    """The goals against the peers (benchmarks/peers.py), PASS or MISS."""

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    rows = []
    fastest = peers.fastest_database_peer(measured)
    enqueue = measured.get("enqueue", {})
    for name, what in (
        ("ours_new", "enqueue, a new record's job (one call)"),
        ("ours", "queue.enqueue() replacing older jobs, synchronous commit"),
    ):
        if fastest and name in enqueue:
            peer, rate = fastest
            mine = enqueue[name]["rate"]
            rows.append(
                [
                    f"{what} >= fastest database-backed peer",
                    f"{mine:,.0f}/s = {mine / rate:.2f}x {peers.QUEUES[peer][0]} ({rate:,.0f}/s)",
                    verdict(mine >= rate),
                ]
            )
    pickup = _get(measured, "workers", "ours", "pickup", "p50_ms")
    floor = _get(measured, "workers", "notify", "pickup", "p50_ms")
    if pickup is not None:
        beside = f" (floor {floor:.1f} ms)" if floor is not None else ""
        rows.append(
            [
                f"pickup p50 <= {MAX_P50_MS['postgres']:g} ms from the enqueue call, as peers'",
                f"{pickup:.1f} ms{beside}",
                verdict(pickup <= MAX_P50_MS["postgres"]),
            ]
        )
    best = peers.best_peer_drain(measured)
    # Ours measured as the peers are, in the same minute (the throughput table
    # above is a claim benchmark, run minutes earlier).
    drain = _get(measured, "workers", "ours", "drain")
    if best and drain:
        peer, rate = best
        rows.append(
            [
                f"no-op drain, 1 process, >= {MIN_DRAIN_LEAD:g}x the best peer's",
                f"{drain:,.0f} jobs/s = {drain / rate:.1f}x {peers.QUEUES[peer][0]} ({rate:,.0f})",
                verdict(drain >= MIN_DRAIN_LEAD * rate),
            ]
        )
    return _table(["PostgreSQL target", "Measured (same run)", "Result"], rows)


def _conn_max_age(value: str) -> str:
    if value.lower() != "none" and not value.isdigit():
        raise argparse.ArgumentTypeError("a number of seconds or 'none'")
    return value


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k/100k backlogs, fewer samples")
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "mariadb", "all"], default="all", help="default: all"
    )
    parser.add_argument(
        "--conn-max-age",
        type=_conn_max_age,
        metavar="SECONDS|none",
        help="what-if: CONN_MAX_AGE for every process (default: Django's, 0)",
    )
    parser.add_argument(
        "--relaxed-commit",
        action="store_true",
        help="what-if: PostgreSQL synchronous_commit=off, SQLite synchronous=NORMAL "
        "(MariaDB: none, innodb_flush_log_at_trx_commit is server-wide)",
    )
    parser.add_argument(
        "--no-engines",
        dest="engines",
        action="store_false",
        help="skip the no-op jobs/s through RQ, Celery and django-tasks-db (benchmarks/engines.py)",
    )
    parser.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="skip enqueue, drain and pickup of procrastinate, django-tasks-db and RQ "
        "(benchmarks/peers.py, PostgreSQL)",
    )
    parser.add_argument("--driver", choices=list(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        return driver_main(args)
    # SIGTERM unwinds like Ctrl-C, so the database and files are still removed.
    signal.signal(signal.SIGTERM, _terminate)

    if args.conn_max_age is not None:
        os.environ["ATTACHMENTS_BENCH_CONN_MAX_AGE"] = args.conn_max_age
    if args.relaxed_commit:
        os.environ["ATTACHMENTS_BENCH_RELAXED_COMMIT"] = "1"
    dbs = ["postgres", "mariadb", "sqlite"] if args.db == "all" else [args.db]
    load_before, code_before = os.getloadavg(), code_version()
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        for db in dbs:
            print(f"Benchmarking {db}...", file=sys.stderr, flush=True)
            if db != "sqlite" and (problem := server_available(db)):
                results[db] = {"db": db, "skipped": f"{NAMES[db]} unavailable ({problem})"}
                continue
            results[db] = run_driver(db, args, plan(args.quick)["driver_timeout"])
        # Each engine beside our own worker, on a fresh database of each kind.
        through_engines = {
            db: engines.run(db, 200 if args.quick else 500)
            for db in dbs
            if args.engines and "skipped" not in results[db] and db in engines.DATABASES
        }
        measured_peers = (
            peers.run(args.quick)
            if args.peers and "postgres" in results and "skipped" not in results["postgres"]
            else None
        )
    except KeyboardInterrupt:
        print("Interrupted; benchmark database and files removed.", file=sys.stderr)
        return 130
    print(f"Done in {time.monotonic() - started:.0f}s.\n", file=sys.stderr, flush=True)
    print(report(results, args, load_before, os.getloadavg(), code_before))
    if measured_peers:
        print(f"\nPeers on PostgreSQL (benchmarks/peers.py):\n{peers.table(measured_peers)}")
        print(f"\n{peer_targets(measured_peers)}")
    if through_engines:
        print(f"\nTask engines (benchmarks/engines.py):\n{engines.table(through_engines)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
