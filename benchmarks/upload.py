"""Benchmark of the upload request: what an AttachmentField adds to it.

    .venv/bin/python benchmarks/upload.py [--quick] [--requests N]
    .venv/bin/python benchmarks/upload.py --only-process [--quick] [--requests N]

Multipart POSTs of an 18 MP camera-sized JPEG (``corpus.big_jpeg``, about 5 MB)
to views that validate a ModelForm and save it (``benchmarks/uploadapp``), one
model per kind of field:

* a plain ``FileField``: the baseline, what any upload costs;
* ``AttachmentField`` with ``process_in_background=True`` (the default), with 2
  styles and with 8: the request probes the header, stages the file and enqueues
  a job, and must cost about what the plain upload does, whatever the styles;
* ``AttachmentField`` with ``process_in_background=False``: the styles are made in
  the request, on commit; what the background path saves the user;
* the plain and the 2-style upload again with a 1 MP JPEG: the request's cost
  follows the bytes sent, not the pixels.

The server is real: Django's WSGI handler under ``wsgiref`` in its own process on
127.0.0.1 (one request at a time), so each request goes through the socket,
Django's multipart parser and its upload handlers (files over 2.5 MB spill to a
temporary file), as a user's would; the test Client would skip the first two.
A temporary SQLite database and MEDIA_ROOT, removed at the end. Requests to the
endpoints are interleaved, after two warm-up requests each; p50 and p95 of the
client's wall time per request. Then the server's records are checked: every
background upload has its job and is still processing, every in-request one is
ready.

``--only-process`` measures instead what each style named in a field's
``only_process`` adds to the request (see ``only_process_cost``).
"""

from __future__ import annotations

import _script  # first of all: it fixes sys.path

# isort: split
import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

from PIL import Image

from benchmarks import corpus

SETTINGS = "benchmarks.uploadapp.settings"
MAX_RATIO = 1.2  # background upload p50 / plain FileField upload p50
TIMEOUT = 120  # seconds for any one request


@dataclass
class Endpoint:
    label: str
    model: str
    body: bytes
    content_type: str
    times: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.times) * 1000


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def small_jpeg(big: bytes) -> bytes:
    with Image.open(io.BytesIO(big)) as im:
        small = im.resize((1224, 816), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def post(port: int, endpoint: Endpoint) -> tuple[float, int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    start = time.perf_counter()
    try:
        connection.request(
            "POST",
            f"/upload/{endpoint.model}/",
            body=endpoint.body,
            headers={"Content-Type": endpoint.content_type},
        )
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return time.perf_counter() - start, response.status, payload


def get_json(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def serve() -> None:
    """The server process: Django under wsgiref on a free loopback port, printed first."""
    import logging
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import django
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    django.setup()
    logging.getLogger("attachments").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 requests per endpoint")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-process",
        action="store_true",
        help="instead: what each style named in only_process adds to the request",
    )
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.only_process:
        only_process_cost(args.requests or (5 if args.quick else 15))
        return
    requests = args.requests or (8 if args.quick else 30)

    big = corpus.big_jpeg()
    small = small_jpeg(big)
    big_body, big_type = multipart(big, "camera photo.jpg")
    small_body, small_type = multipart(small, "small photo.jpg")
    results = {}
    for mode, atomic in (("autocommit (Django's default)", "0"), ("ATOMIC_REQUESTS=True", "1")):
        endpoints = [
            Endpoint("plain FileField", "plainupload", big_body, big_type),
            Endpoint(
                "AttachmentField, background, 2 styles", "backgroundupload", big_body, big_type
            ),
            Endpoint(
                "AttachmentField, background, 8 styles", "manystylesupload", big_body, big_type
            ),
            Endpoint("AttachmentField, in the request", "foregroundupload", big_body, big_type),
            Endpoint("plain FileField, 1 MP", "plainupload", small_body, small_type),
            Endpoint(
                "AttachmentField, background, 1 MP", "backgroundupload", small_body, small_type
            ),
        ]
        stats = run(endpoints, requests, atomic)
        results[mode] = (endpoints, stats)
    run_kind = "--quick" if args.quick else "full run"
    print(f"\nUpload request time ({run_kind}): {requests} POSTs per row")
    print(
        f"Files: 18 MP JPEG 5184x3456, {len(big) / 1e6:.1f} MB; 1 MP JPEG 1224x816, "
        f"{len(small) / 1e6:.2f} MB (cut from the largest photo of the corpus)"
    )
    print(
        "Server: Django's WSGI handler under wsgiref in its own process on 127.0.0.1; client "
        f"http.client; SQLite (rollback journal, synchronous=FULL); load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    for mode, (endpoints, stats) in results.items():
        report(mode, endpoints, stats, requests)


def run(endpoints: list[Endpoint], requests: int, atomic: str) -> dict:
    """Serve a fresh database and MEDIA_ROOT, time the requests; the server's stats after."""
    folder = tempfile.mkdtemp(prefix="attachments-bench-upload-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "UPLOADAPP_DB": "sqlite",
        "UPLOADAPP_DB_NAME": os.path.join(folder, "db.sqlite3"),
        "UPLOADAPP_MEDIA_ROOT": os.path.join(folder, "media"),
        "UPLOADAPP_ATOMIC_REQUESTS": atomic,
        "PYTHONPATH": _script.ROOT,
    }
    server = None
    try:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True
        )
        server = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        port = int(server.stdout.readline())
        log(f"server on 127.0.0.1:{port}, ATOMIC_REQUESTS={atomic}, {requests} requests each")
        for number in range(requests + 2):
            for endpoint in endpoints:
                seconds, status, payload = post(port, endpoint)
                if status != 201:
                    raise SystemExit(f"{endpoint.label}: HTTP {status}: {payload[:300]!r}")
                if number >= 2:
                    endpoint.times.append(seconds)
        return get_json(port, "/stats/")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def report(mode: str, endpoints: list[Endpoint], stats: dict, requests: int) -> None:
    sent = requests + 2
    print(f"\n{mode}:")
    print()
    plain = endpoints[0]
    header = f"{'endpoint':42}{'p50 ms':>9}{'p95 ms':>9}{'p50 / plain':>13}"
    print(header)
    print("-" * len(header))
    for endpoint in endpoints:
        base = plain if "1 MP" not in endpoint.label else endpoints[4]
        print(
            f"{endpoint.label:42}{endpoint.p50:9.1f}{endpoint.percentile(0.95):9.1f}"
            f"{endpoint.p50 / base.p50:13.2f}"
        )
    background, many, foreground = endpoints[1], endpoints[2], endpoints[3]
    ratio = background.p50 / plain.p50
    print()
    print(
        f"Target: background upload p50 <= {MAX_RATIO}x plain FileField: {ratio:.2f}x "
        f"{'PASS' if ratio <= MAX_RATIO else 'MISS'} (p95: "
        f"{background.percentile(0.95) / plain.percentile(0.95):.2f}x)"
    )
    print(
        f"Styles do not count: 8 styles / 2 styles = {many.p50 / background.p50:.2f}x; "
        f"in-request processing costs {foreground.p50 - plain.p50:.0f} ms more than a plain upload"
    )
    checks = {
        "every background upload queued a job": stats["jobs"] == 3 * sent,
        "background records still processing": set(stats["backgroundupload"]) == {"processing"}
        and len(stats["backgroundupload"]) == 2 * sent,
        "in-request records ready": stats["foregroundupload"] == ["ready"] * sent,
        "plain records saved": stats["plainupload"] == 2 * sent,
    }
    for check, ok in checks.items():
        print(f"Check: {check}: {'PASS' if ok else 'MISS'}")


# only_process: styles made in the request -----------------------------------------------------


def only_process_cost(repeats: int) -> None:
    """Time ``image.save`` (validate, stage, make ``only_process``) per style named there.

    In this process (no server, no database: ``save=False`` stops before the
    record's save), on the 1 MP and the 18 MP JPEG, for the 8 styles of
    ``ManyStylesUpload`` one at a time and all at once; each row's median over
    ``repeats`` saves less the median of the same save without ``only_process``
    is what naming those styles adds to the upload request.
    """
    folder = tempfile.mkdtemp(prefix="attachments-bench-only-process-")
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["UPLOADAPP_MEDIA_ROOT"] = folder
    import django

    django.setup()
    from django.core.files.base import ContentFile

    from benchmarks.uploadapp.models import MANY_STYLES, ManyStylesUpload

    field = ManyStylesUpload._meta.get_field("image")
    big = corpus.big_jpeg()
    files = {"1 MP JPEG": small_jpeg(big), "18 MP JPEG": big}
    choices = [(), *((name,) for name in MANY_STYLES), tuple(MANY_STYLES)]

    def median_save(data: bytes, only: tuple[str, ...]) -> float:
        field.only_process = only
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            ManyStylesUpload().image.save("photo.jpg", ContentFile(data), save=False)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    try:
        print(f"\nonly_process: ms a style adds to the upload request, median of {repeats}")
        print(f"{'only_process':<24}" + "".join(f"{name:>14}" for name in files))
        base = {name: median_save(data, ()) for name, data in files.items()}
        print(f"{'(none: the baseline)':<24}" + "".join(f"{base[n] * 1e3:14.1f}" for n in files))
        for only in choices[1:]:
            label = "all 8" if len(only) > 1 else f"{only[0]} {MANY_STYLES[only[0]]}"
            added = {n: median_save(d, only) - base[n] for n, d in files.items()}
            print(f"{label:<24}" + "".join(f"{added[n] * 1e3:+14.1f}" for n in files))
    finally:
        field.only_process = ()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
