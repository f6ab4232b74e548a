"""The demo's local S3 endpoint keeps its objects across restarts, as its SQLite rows do."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from demo_site import s3

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CACHE = "public, max-age=31536000, immutable"
MiB = 1024 * 1024


class DemoS3:
    """``python -m demo_site.s3`` on a free port, mirroring into ``directory``."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.process: subprocess.Popen[str] | None = None
        self.started = ""

    def start(self) -> None:
        env = {**os.environ, "DEMO_S3_PORT": str(self.port), "DEMO_S3_DIR": str(self.directory)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo_site.s3"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started = self.process.stdout.readline()  # printed once the bucket is ready
        assert self.started.startswith("Local S3 endpoint on"), self.process.stderr.read()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process
        self.process.send_signal(signum)
        code = self.process.wait(30)
        self.process.stdout.close()
        self.process.stderr.close()
        return code

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=s3.REGION,
            **s3.CREDENTIALS,
        )

    def mirrored(self) -> dict[str, dict[str, str]]:
        index = self.directory / "index.json"
        return json.loads(index.read_text()) if index.exists() else {}


@pytest.fixture
def demo_s3(tmp_path: Path) -> Iterator[DemoS3]:
    server = DemoS3(tmp_path / "demo-s3")
    yield server
    if server.process and server.process.poll() is None:
        server.process.kill()
        server.process.wait(10)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def put(client, key: str, body: bytes, content_type: str) -> None:
    client.put_object(
        Bucket=s3.BUCKET, Key=key, Body=body, ContentType=content_type, CacheControl=CACHE
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_objects_outlive_a_restart(demo_s3, stop):
    """What the bucket held comes back, bytes and headers; a deleted object does not.

    SIGTERM (Ctrl-C in honcho) mirrors the bucket on the way out; after
    SIGKILL what the index named, mirrored within a second, survives.
    """
    demo_s3.start()
    client = demo_s3.client()
    put(client, "items/a/photo.png", b"png bytes", "image/png")
    put(client, "items/b/gone.jpg", b"jpeg bytes", "image/jpeg")
    # Larger than a part: uploaded in two parts, as django-storages does past its threshold.
    big = os.urandom(6 * MiB)
    parts = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_fileobj(
        io.BytesIO(big),
        s3.BUCKET,
        "items/c/big.webp",
        ExtraArgs={"ContentType": "image/webp"},
        Config=parts,
    )
    client.delete_object(Bucket=s3.BUCKET, Key="items/b/gone.jpg")
    if stop == signal.SIGKILL:  # only what was mirrored survives
        wait_until(
            lambda: set(demo_s3.mirrored()) == {"items/a/photo.png", "items/c/big.webp"},
            "the mirror to catch up",
        )
    code = demo_s3.stop(stop)
    assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)

    demo_s3.start()
    assert "2 object(s) restored" in demo_s3.started
    client = demo_s3.client()
    listing = client.list_objects_v2(Bucket=s3.BUCKET)
    assert sorted(o["Key"] for o in listing["Contents"]) == [
        "items/a/photo.png",
        "items/c/big.webp",
    ]
    photo = client.get_object(Bucket=s3.BUCKET, Key="items/a/photo.png")
    assert (photo["Body"].read(), photo["ContentType"], photo["CacheControl"]) == (
        b"png bytes",
        "image/png",
        CACHE,
    )
    large = client.get_object(Bucket=s3.BUCKET, Key="items/c/big.webp")
    assert (large["Body"].read() == big, large["ContentType"]) == (True, "image/webp")
    # Nothing left over: one file per object besides the index.
    files = {path.name for path in demo_s3.directory.iterdir()}
    assert files == {"index.json", *(entry["file"] for entry in demo_s3.mirrored().values())}
    assert demo_s3.stop() == 0
