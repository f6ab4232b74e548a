"""No-op jobs/s through each task engine, beside our own worker, on one database.

    .venv/bin/python benchmarks/engines.py [--db sqlite|postgres] [--jobs N]

``benchmarks/queue.py`` runs it too and prints its table. For each transport
the same N jobs are queued in the ledger (with ``BACKEND="tasks"`` a task is
sent per job, as an upload sends it; for our worker, rows only), then one worker
process is started as the README starts it, with one process and one job at a
time: ``process_attachments``, ``rqworker`` (which forks a work horse per job),
``celery worker --concurrency 1`` (prefork), ``db_worker``. Every job is a
no-op (``benchmarks.noopapp``), so the figure is the transport's own cost: the
rate is N-1 jobs over the time between the first and the last job leaving the
ledger, polled every 10 ms. Worker start-up is not counted. RQ needs Redis and
Celery RabbitMQ on 127.0.0.1; an engine whose package or broker is missing is
reported as such. Takes about a minute.
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from typing import Any

from benchmarks import databases

ROOT = _script.ROOT
SETTINGS = "benchmarks.engine_settings"
MANAGE = (sys.executable, os.path.join(ROOT, "manage.py"))
# One per run, inherited by the driver and the workers.
QUEUE = os.environ.setdefault("ATTACHMENTS_BENCH_QUEUE", f"attachments-bench-{os.getpid()}")
TIMEOUT = 300.0  # per transport; a bound for failing, not an expectation
DATABASES = ("sqlite", "postgres")

# name -> (label, TASKS alias, package, broker, worker command)
TRANSPORTS: dict[str, tuple[str, str, str, tuple[str, int] | None, tuple[str, ...]]] = {
    "ours": (
        "process_attachments (ours)",
        "",
        "attachments",
        None,
        (*MANAGE, "process_attachments"),
    ),
    "rq": (
        "RQ (django-tasks-rq)",
        "rq",
        "django_tasks_rq",
        ("127.0.0.1", 6379),
        (*MANAGE, "rqworker", QUEUE, "--job-class", "django_tasks_rq.Job", "--with-scheduler"),
    ),
    "celery": (
        "Celery (django-tasks-celery)",
        "celery",
        "django_tasks_celery",
        ("127.0.0.1", 5672),
        (
            *(sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "-Q"),
            *(QUEUE, "--concurrency", "1", "--without-gossip", "--without-mingle", "-l", "WARNING"),
        ),
    ),
    "db": (
        "django-tasks-db",
        "db",
        "django_tasks_db",
        None,
        (
            *(*MANAGE, "db_worker", "--queue-name", QUEUE, "--backend", "db"),
            *("--interval", "0.05", "--no-startup-delay"),
        ),
    ),
}


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def unavailable(name: str) -> str | None:
    _, _, package, broker, _ = TRANSPORTS[name]
    if find_spec(package) is None:
        return f"{package} not installed"
    if broker:
        try:
            socket.create_connection(broker, timeout=1).close()
        except OSError:
            return f"no broker on {broker[0]}:{broker[1]}"
    return None


def measure(name: str, jobs: int, env: dict[str, str]) -> dict[str, Any]:
    """Queue ``jobs`` no-op jobs through transport ``name``, start its worker, time the drain."""
    from django.db import connections
    from django.test.utils import override_settings

    from attachments import queue
    from attachments.models import Job

    _, alias, _, _, command = TRANSPORTS[name]
    Job.objects.all().delete()
    attachments = {"BACKEND": "tasks", "TASKS_BACKEND": alias} if alias else {}
    with override_settings(ATTACHMENTS={**attachments, "QUEUE": QUEUE}):
        if alias:
            from attachments import tasks
        for i in range(jobs):
            job = queue.enqueue(
                target="bench.item.image", object_id=i, source=f"s/{i}.jpg", queue=QUEUE
            ).job
            if alias:
                tasks.send(job)
    connections.close_all()
    # A file, not a pipe: a worker that logs a line per job would fill a pipe and stall.
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "ATTACHMENTS_BENCH_TASKS_BACKEND": alias},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            first = last = None
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and worker.poll() is None:
                left = Job.objects.count()
                now = time.monotonic()
                if first is None and left < jobs:
                    first = now
                if left == 0:
                    last = now
                    break
                time.sleep(0.01)
        finally:
            _script.stop_group(worker)
            log.seek(0)
            errors = log.read()
    if last is None or first is None or last <= first:
        tail = errors.decode(errors="replace")[-2000:]
        return {"error": f"did not drain {jobs} jobs (exit {worker.returncode}): {tail}"}
    return {"jobs": jobs, "seconds": last - first, "rate": (jobs - 1) / (last - first)}


def driver(db: str, jobs: int, out: str, only: list[str]) -> None:
    """Inside a process set up for ``db``: migrate, then measure every transport."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    env = {**os.environ}
    results: dict[str, Any] = {}
    for name in only:
        if problem := unavailable(name):
            results[name] = {"error": problem}
            continue
        log(f"{db}: {TRANSPORTS[name][0]}, {jobs} jobs")
        results[name] = measure(name, jobs, env)
    with open(out, "w") as fp:
        json.dump(results, fp)


def run(db: str, jobs: int, only: list[str] | None = None) -> dict[str, Any]:
    """Measure every transport on a fresh database of ``db``'s kind; return the figures."""
    workdir = tempfile.mkdtemp(prefix="attachments-bench-engines-")
    out = os.path.join(workdir, "results.json")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "ATTACHMENTS_BENCH_DB": db,
        "ATTACHMENTS_BENCH_SQLITE": os.path.join(workdir, "engines.sqlite3"),
        "ATTACHMENTS_BENCH_PG_NAME": f"attachments_bench_engines_{os.getpid()}",
    }
    if db == "postgres":
        databases.postgres_admin(f"CREATE DATABASE {env['ATTACHMENTS_BENCH_PG_NAME']}")
    try:
        subprocess.run(
            [sys.executable, __file__, "--driver", db, "--jobs", str(jobs), "--out", out]
            + [f"--only={name}" for name in only or TRANSPORTS],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=TIMEOUT * len(TRANSPORTS),
        )
        with open(out) as fp:
            return json.load(fp)
    finally:
        if db == "postgres":
            databases.postgres_admin(
                f"DROP DATABASE IF EXISTS {env['ATTACHMENTS_BENCH_PG_NAME']} WITH (FORCE)"
            )
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures of every database, one row per transport, with the ratio to ours."""
    dbs = list(results)
    rows = [["No-op jobs/s, one worker process", *(f"{db}" for db in dbs)]]
    for name, (label, *_) in TRANSPORTS.items():
        cells = []
        for db in dbs:
            figure = results[db].get(name, {})
            ours = results[db].get("ours", {}).get("rate")
            if "rate" not in figure:
                cells.append(f"n/a ({figure.get('error', 'not run')[:60]})")
            elif name == "ours" or not ours:
                cells.append(f"{figure['rate']:,.0f}")
            else:
                cells.append(f"{figure['rate']:,.0f} ({figure['rate'] / ours:.2f}x ours)")
        rows.append([label, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument(
        "--only", action="append", choices=list(TRANSPORTS), help="these transports (repeatable)"
    )
    parser.add_argument("--driver", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(args.driver, args.jobs, args.out, args.only or list(TRANSPORTS))
        return 0
    dbs = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    results = {db: run(db, args.jobs, args.only) for db in dbs}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
