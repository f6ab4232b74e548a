"""The same job for every queue: tell the benchmark, by a UDP datagram, when it started.

The datagram carries the job's key and ``time.monotonic()`` taken as the job
starts (one clock for every process of the machine); the benchmark blocks on
its socket, so waiting for a job costs no polling. The port comes from
``ATTACHMENTS_BENCH_STAMPS``. procrastinate finds its task here by Django app
autodiscovery (a ``tasks`` module), django-tasks-db and RQ by import path.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from django.tasks import task
from procrastinate.contrib.django import app

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _stamp(key: str) -> None:
    started = time.monotonic()
    port = int(os.environ["ATTACHMENTS_BENCH_STAMPS"])
    _socket.sendto(f"{key} {started!r}".encode(), ("127.0.0.1", port))


def stamp_ours(job: Any) -> Any:
    """Our worker's run: the job's object id is the key."""
    from attachments import processing

    _stamp(job.object_id)
    return processing.Outcome.READY


@task(backend="db", queue_name="attachments_bench")
def stamp_db(key: str) -> None:
    _stamp(key)


@app.task(name="attachments_bench_stamp", queue="attachments_bench")
def stamp_procrastinate(key: str) -> None:
    _stamp(key)


def stamp_rq(key: str) -> None:
    _stamp(key)
