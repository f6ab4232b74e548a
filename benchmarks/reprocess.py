"""Benchmark of ``reprocess_attachments``: records/s beside the worker's jobs/s, same images.

    .venv/bin/python benchmarks/reprocess.py [--records N] [--concurrency N] [--db sqlite|postgres]

In a fresh database and MEDIA_ROOT (``benchmarks/uploadapp``, styles ``100x100>``
and ``200x200#``), with one photo of the corpus scaled to 800 px wide (JPEG, so
every run decodes the same bytes):

* **worker**: ``--records`` uploads saved through the field (staged, one job
  each), then ``process_attachments --burst --concurrency N``: jobs/s, the
  baseline, from the worker's start to the queue drained.
* **reprocess --inline**: ``--records`` published records whose state says both
  styles are missing (as after adding them), then ``reprocess_attachments
  --inline --concurrency N``: records/s over the command's whole run, which
  includes reading the records in batches.
* **reprocess, queued**: the same records again, ``reprocess_attachments``
  (bulk enqueue, timed on its own), then ``process_attachments --burst
  --concurrency N``: records/s from the enqueue's start to the queue drained.

Each configuration runs once (10,000 records take minutes); the ratios to the
worker's jobs/s are measured in the same run. After each, every record must
have both styles made from their current declaration and the queue be empty.
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from benchmarks.worker import database, free_cores, postgres_available

WIDTH = 800


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Child processes ---------------------------------------------------------------------------


def populate(count: int, source: str) -> None:
    """Create ``count`` published records of ``source`` whose styles are all still to make."""
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from PIL import Image

    from benchmarks.uploadapp.models import BackgroundUpload

    with open(source, "rb") as f:
        data = f.read()
    size = Image.open(io.BytesIO(data)).size
    field = BackgroundUpload._meta.get_field("image")
    records = []
    for _ in range(count):
        name = f"background/{uuid.uuid4().hex}/photo.jpg"
        field.storage.save(name, ContentFile(data))
        records.append(
            BackgroundUpload(image=name, image_state="ready", image_styles={"original": list(size)})
        )
    BackgroundUpload.objects.bulk_create(records, batch_size=1000)


def reprocess(concurrency: int, inline: bool) -> None:
    """Reprocess every record (inline, or queue and drain); print timings as JSON."""
    import django

    django.setup()
    from django.core.management import call_command

    from attachments.models import Job
    from benchmarks.uploadapp.models import BackgroundUpload

    out = io.StringIO()
    start = time.perf_counter()
    call_command("reprocess_attachments", inline=inline, concurrency=concurrency, stdout=out)
    enqueued = time.perf_counter() - start
    if not inline:
        call_command("process_attachments", burst=True, concurrency=concurrency, stdout=out)
    seconds = time.perf_counter() - start
    field = BackgroundUpload._meta.get_field("image")
    lacking = sum(
        bool(field.due(state))
        for state in BackgroundUpload.objects.values_list("image_styles", flat=True)
    )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "enqueue_seconds": None if inline else enqueued,
                "records": BackgroundUpload.objects.count(),
                "lacking": lacking,
                "jobs_left": Job.objects.count(),
            }
        )
    )


# The driver --------------------------------------------------------------------------------


def _child(env: dict[str, str], *args: str) -> dict | None:
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def _worker(env: dict[str, str], *args: str) -> dict | None:
    worker = os.path.join(_script.HERE, "worker.py")
    done = subprocess.run(
        [sys.executable, worker, *args], env=env, check=True, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def photo(folder: str) -> str:
    """One corpus JPEG scaled to ``WIDTH`` px wide, written to a file; its path."""
    from PIL import Image

    from benchmarks import corpus

    original = corpus.load(formats=("JPEG",)).photos[0]
    image = Image.open(io.BytesIO(original.data))
    image = image.resize((WIDTH, round(image.height * WIDTH / image.width)))
    path = os.path.join(folder, "photo.jpg")
    image.convert("RGB").save(path, "JPEG", quality=85)
    log(f"image: {original.name} scaled to {image.width}x{image.height}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--populate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", default="", help=argparse.SUPPRESS)
    parser.add_argument("--reprocess", choices=["inline", "queued"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.populate is not None:
        populate(args.populate, args.source)
        return
    if args.reprocess:
        reprocess(args.concurrency, args.reprocess == "inline")
        return

    if args.db == "postgres" and (why := postgres_available()):
        sys.exit(f"PostgreSQL is not available: {why}")
    folder = tempfile.mkdtemp(prefix="attachments-bench-reprocess-")
    source = photo(folder)
    n, c = args.records, str(args.concurrency)
    rows = []
    with database(args.db, folder, "worker") as env:
        log(f"worker: saving {n} uploads")
        _worker(env, "--fill", str(n), "--source", source)
        cores = free_cores()
        log("worker: draining")
        result = _worker(env, "--work", c)
        assert result, "the worker printed nothing"
        assert result["ready"] == result["records"] == n, result
        rows.append(("worker (uploads)", n / result["seconds"], result["seconds"], cores, ""))
    for mode in ("inline", "queued"):
        with database(args.db, folder, f"reprocess-{mode}") as env:
            log(f"reprocess {mode}: creating {n} published records")
            _child(env, "--populate", str(n), "--source", source)
            cores = free_cores()
            log(f"reprocess {mode}: running")
            result = _child(env, "--reprocess", mode, "--concurrency", c)
            assert result, "the reprocess printed nothing"
            assert result["lacking"] == result["jobs_left"] == 0, result
            note = "" if mode == "inline" else f"enqueue {result['enqueue_seconds']:.1f} s"
            rows.append(
                (f"reprocess --{mode}", n / result["seconds"], result["seconds"], cores, note)
            )
    baseline = rows[0][1]
    styles = "styles 100x100> 200x200#"
    print(f"\n{n} records, {args.db}, --concurrency {c}, one {WIDTH} px JPEG, {styles}")
    print(f"{'':24} {'per s':>8} {'seconds':>8} {'vs worker':>9} {'cores free':>10}")
    for name, rate, seconds, cores, note in rows:
        print(f"{name:24} {rate:8.1f} {seconds:8.1f} {rate / baseline:9.2f} {cores:10.2f}  {note}")


if __name__ == "__main__":
    main()
