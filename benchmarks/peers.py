"""Enqueue, pickup and drain beside the peer queues, on PostgreSQL, in one run.

    .venv/bin/python benchmarks/peers.py [--quick]

``benchmarks/queue.py`` runs it too, prints its table and checks its targets.
On a fresh PostgreSQL database, each queue with its own client and worker, as
its documentation starts them: ours (``queue.enqueue``, ``process_attachments``),
django-tasks-db (``task.enqueue()``, ``db_worker --interval 0.01``: a
favourable poll, its default is 1 s), procrastinate (``task.defer()``,
``procrastinate worker --concurrency 1``, LISTEN/NOTIFY) and RQ
(``queue.enqueue``, ``rq worker -w rq.SimpleWorker``, Redis, not a database).
Every job is the same "stamp" (``benchmarks/peerapp/tasks.py``): it sends the
benchmark a datagram with the time it started.

1. Enqueue: one call per job, autocommit, in rounds of ``n`` calls per queue,
   the queues taking turns round by round (a loaded machine's drift, and the
   disk's flush times, hit them alike); rate = calls / their total time. A bare
   ``Job.objects.create()`` (one INSERT, one commit) is the floor every
   database-backed queue pays.
2. Drain: ``jobs`` jobs queued with no worker running, then one worker process
   started: (jobs - 1) / (time between the first and the last job's start).
3. Pickup: that worker, now idle, gets one job at a time with random 50-150 ms
   gaps; latency from the enqueue call (and from its return) to the job's start.
   Ours is sent as a new upload sends it (a new record's job). The floor is
   psycopg alone (``benchmarks/peerapp/floor.py``): a NOTIFY in one statement
   whose commit does not wait for the disk, a listener that makes one round
   trip and stamps; what the machine and PostgreSQL allow any such queue.

Takes about a minute and a half (``--quick`` less than one).
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import argparse
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from typing import Any

from benchmarks import databases

ROOT = _script.ROOT
SETTINGS = "benchmarks.peer_settings"
MANAGE = (sys.executable, os.path.join(ROOT, "manage.py"))
REDIS = ("127.0.0.1", 6379)
TARGET = "bench.item.image"
PEER_QUEUE = "attachments_bench"

# name -> label, database-backed, package (None: always there)
QUEUES: dict[str, tuple[str, bool, str | None]] = {
    "ours": ("ours, queue.enqueue()", True, None),
    "ours_new": ("ours, new record (what a new upload sends)", True, None),
    "db": ("django-tasks-db", True, "django_tasks_db"),
    "procrastinate": ("procrastinate", True, "procrastinate"),
    "rq": ("RQ (Redis)", False, "rq"),
    "floor": ("a bare Job.objects.create()", True, None),
    "notify": ("floor: NOTIFY, then one round trip (psycopg alone)", True, None),
}
# The queues whose worker is started for the drain and pickup.
WORKERS = ("ours", "db", "procrastinate", "rq", "notify")


def plan(quick: bool) -> dict[str, int]:
    if quick:
        return {"rounds": 6, "calls": 50, "jobs": 300, "samples": 40}
    return {"rounds": 12, "calls": 100, "jobs": 1000, "samples": 100}


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def unavailable(name: str) -> str | None:
    package = QUEUES[name][2]
    if package and find_spec(package) is None:
        return f"{package} not installed (pip install -e '.[bench]')"
    if name == "rq":
        try:
            socket.create_connection(REDIS, timeout=1).close()
        except OSError:
            return f"no Redis on {REDIS[0]}:{REDIS[1]}"
    return None


# ---------------------------------------------------------------------------
# Inside the driver process (Django set up on the benchmark database).
# ---------------------------------------------------------------------------


def enqueuers(rq_queue: str) -> dict[str, Callable[[str], object]]:
    """One call that queues the stamp job with ``key``, per queue."""
    from attachments import queue
    from attachments.models import Job

    def ours(key: str) -> object:
        return queue.enqueue(target=TARGET, object_id=key, source=f"s/{key}.jpg")

    def ours_new(key: str) -> object:
        return queue.enqueue(target=TARGET, object_id=key, source=f"s/{key}.jpg", new_record=True)

    def floor(key: str) -> object:
        return Job.objects.create(target=TARGET, object_id=key, source=f"s/{key}.jpg")

    calls: dict[str, Callable[[str], object]] = {"ours": ours, "ours_new": ours_new}
    if not unavailable("db"):
        from benchmarks.peerapp.tasks import stamp_db

        calls["db"] = stamp_db.enqueue
    if not unavailable("procrastinate"):
        from benchmarks.peerapp.tasks import stamp_procrastinate

        calls["procrastinate"] = lambda key: stamp_procrastinate.defer(key=key)
    if not unavailable("rq"):
        import redis
        import rq

        from benchmarks.peerapp.tasks import stamp_rq

        rq_client = rq.Queue(rq_queue, connection=redis.Redis(*REDIS))
        calls["rq"] = lambda key: rq_client.enqueue(stamp_rq, key)
    calls["floor"] = floor
    return calls


def notify(key: str) -> None:
    """What wakes the pickup floor's worker: one statement, its commit not waiting for the disk."""
    from django.db import connection

    from benchmarks.peerapp.floor import CHANNEL

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, %s), set_config('synchronous_commit', 'off', true)",
            [CHANNEL, key],
        )


def clear(rq_queue: str) -> None:
    """Empty every queue's table (and RQ's list) between phases."""
    from django.db import connection

    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for table in (
            "attachments_job",
            "django_tasks_database_dbtaskresult",
            "procrastinate_jobs",
        ):
            if table in tables:
                cursor.execute(f"TRUNCATE {table} CASCADE")
    if not unavailable("rq"):
        import redis
        import rq

        rq.Queue(rq_queue, connection=redis.Redis(*REDIS)).empty()


def enqueue_rates(calls: dict[str, Callable[[str], object]], p: dict[str, int]) -> dict[str, Any]:
    seconds = dict.fromkeys(calls, 0.0)
    each: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(p["rounds"]):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            call = calls[name]
            for i in range(p["calls"]):
                key = f"{name}-{round_}-{i}"  # ours: no two contenders share a record
                start = time.perf_counter()
                call(key)
                spent = time.perf_counter() - start
                seconds[name] += spent
                each[name].append(spent)
    n = p["rounds"] * p["calls"]
    return {
        name: {
            "calls": n,
            "rate": n / seconds[name],
            "p50_ms": statistics.median(each[name]) * 1000,
        }
        for name in calls
    }


@contextlib.contextmanager
def stamps() -> Iterator[tuple[socket.socket, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def receive(sock: socket.socket, timeout: float) -> tuple[str, float] | None:
    sock.settimeout(max(timeout, 0.001))
    try:
        data = sock.recv(256)
    except TimeoutError:
        return None
    key, started = data.decode().split()
    return key, float(started)


def worker_command(name: str, rq_queue: str) -> tuple[str, ...]:
    if name == "ours":
        return (*MANAGE, "process_attachments")
    if name == "db":
        return (
            *(*MANAGE, "db_worker", "--queue-name", PEER_QUEUE, "--backend", "db"),
            *("--interval", "0.01", "--no-startup-delay"),
        )
    if name == "procrastinate":
        return (*MANAGE, "procrastinate", "worker", "--queues", PEER_QUEUE, "--concurrency", "1")
    if name == "notify":
        return (sys.executable, "-m", "benchmarks.peerapp.floor")
    url = f"redis://{REDIS[0]}:{REDIS[1]}/0"
    return (sys.executable, "-m", "rq.cli", "worker", "-w", "rq.SimpleWorker", "-u", url, rq_queue)


def drain_and_pickup(
    name: str, call: Callable[[str], object], rq_queue: str, p: dict[str, int]
) -> dict[str, Any]:
    drains = name != "notify"  # a NOTIFY sent before anybody listens is gone
    with stamps() as (sock, port), tempfile.TemporaryFile() as errors:
        for i in range(p["jobs"] if drains else 0):
            call(f"d{i}")
        worker = subprocess.Popen(
            worker_command(name, rq_queue),
            cwd=ROOT,
            env={**os.environ, "ATTACHMENTS_BENCH_STAMPS": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        try:
            if not drains:
                _until_listening(call, sock)
            return _measure(call, sock, {**p, "jobs": p["jobs"] if drains else 0})
        except TimeoutError as exc:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-600:]
            return {"error": f"{exc}; worker said: {tail}"}
        finally:
            _script.stop_group(worker)


def _until_listening(call: Callable[[str], object], sock: socket.socket) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        call("ready")
        if receive(sock, 0.2) is not None:
            while receive(sock, 0.2) is not None:
                pass
            return
    raise TimeoutError("the worker did not listen within 60 s")


def _measure(call: Callable[[str], object], sock: socket.socket, p: dict[str, int]) -> Any:
    started = []
    deadline = time.monotonic() + 120  # start-up included
    while len(started) < p["jobs"]:
        got = receive(sock, deadline - time.monotonic())
        if got is None:
            raise TimeoutError(f"drained {len(started)} of {p['jobs']} jobs in 120 s")
        started.append(got[1])
    result: dict[str, Any] = {}
    if started:
        result["drain"] = (p["jobs"] - 1) / (max(started) - min(started))
    rng = random.Random(42)
    from_call, from_return, missing = [], [], 0
    for i in range(p["samples"]):
        time.sleep(rng.uniform(0.05, 0.15))
        key = f"p{i}"
        called = time.monotonic()
        call(key)
        returned = time.monotonic()
        deadline = returned + 5
        while (got := receive(sock, deadline - time.monotonic())) is not None:
            if got[0] == key:
                from_call.append((got[1] - called) * 1000)
                from_return.append((got[1] - returned) * 1000)
                break
        else:
            missing += 1
    if not from_call:
        raise TimeoutError("no job picked up within 5 s")
    result["pickup"] = {
        "samples": len(from_call),
        "missing": missing,
        "p50_ms": statistics.median(from_call),
        "p90_ms": statistics.quantiles(from_call, n=10)[-1],
        "from_return_p50_ms": statistics.median(from_return),
    }
    return result


def commit_flush_ms() -> float:
    """The median time a commit waits for the disk: an INSERT's, with it and without."""
    from django.db import connection

    def timed(sql: str) -> float:
        times = []
        with connection.cursor() as cursor:
            for _ in range(50):
                start = time.perf_counter()
                cursor.execute(sql)
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    insert = (
        "INSERT INTO attachments_job (queue, priority, run_at, target, object_id, source, "
        "previous, attempts, max_attempts, locked_by, last_error, created_at) "
        "VALUES ('flush', 0, now(), 'flush', '1', 's', '', 0, 1, '', '', now())"
    )
    relaxed = (
        f"WITH i AS ({insert} RETURNING 1) "
        "SELECT set_config('synchronous_commit', 'off', true) FROM i"
    )
    with_flush, without = [], []
    for _ in range(3):
        with_flush.append(timed(insert))
        without.append(timed(relaxed))
    return max(statistics.median(with_flush) - statistics.median(without), 0.0) * 1000


def driver(quick: bool, out: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    p = plan(quick)
    rq_queue = f"attachments-bench-{os.getpid()}"
    results: dict[str, Any] = {"plan": p, "errors": {}}
    for name in QUEUES:
        if problem := unavailable(name):
            results["errors"][name] = problem
    calls = enqueuers(rq_queue)
    log("enqueue, one call each, the queues taking turns")
    results["enqueue"] = enqueue_rates(calls, p)
    results["flush_ms"] = commit_flush_ms()
    results["workers"] = {}
    for name in WORKERS:
        if name not in calls and name != "notify":
            continue
        clear(rq_queue)
        connections.close_all()
        log(f"{QUEUES[name][0]}: drain of {p['jobs']} jobs, then pickup, one worker process")
        # Ours: what a new upload sends (a job replacing others is sent in the
        # record's own transaction, with its lock).
        call = notify if name == "notify" else calls["ours_new" if name == "ours" else name]
        results["workers"][name] = drain_and_pickup(name, call, rq_queue, p)
    clear(rq_queue)
    with open(out, "w") as fp:
        json.dump(results, fp)


# ---------------------------------------------------------------------------
# The caller: a fresh database, the driver, the table.
# ---------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    """Measure every queue on a fresh PostgreSQL database; return the figures."""
    workdir = tempfile.mkdtemp(prefix="attachments-bench-peers-")
    out = os.path.join(workdir, "results.json")
    name = f"attachments_bench_peers_{os.getpid()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "ATTACHMENTS_BENCH_DB": "postgres",
        "ATTACHMENTS_BENCH_PG_NAME": name,
    }
    databases.postgres_admin(f"CREATE DATABASE {name}")
    try:
        command = [sys.executable, __file__, "--driver", "--out", out]
        subprocess.run(
            command + (["--quick"] if quick else []), cwd=ROOT, env=env, check=True, timeout=900
        )
        with open(out) as fp:
            results: dict[str, Any] = json.load(fp)
            return results
    finally:
        databases.postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        with contextlib.suppress(OSError):
            os.unlink(out)
        os.rmdir(workdir)


def fastest_database_peer(results: dict[str, Any]) -> tuple[str, float] | None:
    """The database-backed peer with the highest enqueue rate, and that rate."""
    rates = [
        (name, figure["rate"])
        for name, figure in results.get("enqueue", {}).items()
        if QUEUES[name][1] and name not in ("ours", "ours_new", "floor")
    ]
    return max(rates, key=lambda item: item[1]) if rates else None


def best_peer_drain(results: dict[str, Any]) -> tuple[str, float] | None:
    drains = [
        (name, figure["drain"])
        for name, figure in results.get("workers", {}).items()
        if name not in ("ours", "notify") and "drain" in figure
    ]
    return max(drains, key=lambda item: item[1]) if drains else None


def table(results: dict[str, Any]) -> str:
    ours = results.get("enqueue", {}).get("ours", {}).get("rate")
    rows = [["PostgreSQL, one worker process", "enqueue, one call", "drain", "pickup p50 / p90"]]
    for name, (label, *_) in QUEUES.items():
        enqueue = results.get("enqueue", {}).get(name)
        worker = results.get("workers", {}).get(name, {})
        error = results.get("errors", {}).get(name) or worker.get("error")
        cells = [label]
        if name == "notify":
            cells.append("")
        elif enqueue:
            ratio = f" ({enqueue['rate'] / ours:.2f}x ours)" if ours and name != "ours" else ""
            cells.append(f"{enqueue['rate']:,.0f}/s, p50 {enqueue['p50_ms']:.2f} ms{ratio}")
        else:
            cells.append(f"n/a ({(error or 'not run')[:50]})")
        if "pickup" in worker:
            pickup = worker["pickup"]
            cells.append(f"{worker['drain']:,.0f} jobs/s" if "drain" in worker else "")
            cells.append(
                f"{pickup['p50_ms']:.1f} / {pickup['p90_ms']:.1f} ms from the call "
                f"({pickup['from_return_p50_ms']:.1f} from its return)"
            )
        elif name in WORKERS:
            cells += ["n/a", f"n/a ({(error or 'not run')[:60]})"]
        else:
            cells += ["", ""]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    flush = results.get("flush_ms")
    if flush is not None:
        lines.append(
            f"A commit's wait for the disk (WAL flush), same run: {flush:.2f} ms median "
            "(an INSERT's time with synchronous_commit on, less off)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, jobs and samples")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(args.quick, args.out)
        return 0
    print(table(run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
