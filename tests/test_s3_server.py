"""End to end over HTTP: a real worker process publishing to moto's S3 server."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable, Iterator

import boto3
import pytest
from django.core.files.base import ContentFile
from moto.server import ThreadedMotoServer

from attachments.models import Job
from attachments.storage import staging_storage
from demo_site.models import Item
from tests import images

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUCKET = "attachments-http"
CACHE = "public, max-age=31536000, immutable"


class S3Endpoint:
    """moto's server on a free loopback port, which tests may stop and start again."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self) -> set[str]:
        listing = self.client().list_objects_v2(Bucket=BUCKET)
        return {o["Key"] for o in listing.get("Contents", [])}

    def storages(self) -> dict:
        return {
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "endpoint_url": self.url,
                    "region_name": "us-east-1",
                    "access_key": "testing",
                    "secret_key": "testing",
                    "object_parameters": {"CacheControl": CACHE},
                },
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }


@pytest.fixture
def endpoint(settings) -> Iterator[S3Endpoint]:
    s3 = S3Endpoint()
    s3.start()
    s3.client().create_bucket(Bucket=BUCKET)
    settings.STORAGES = s3.storages()
    yield s3
    if s3.server is None:
        s3.start()
    urllib.request.urlopen(urllib.request.Request(f"{s3.url}/moto-api/reset", method="POST"))
    s3.stop()


def upload(n: int = 1) -> list[Item]:
    items = []
    for i in range(n):
        item = Item(title=f"item {i}")
        item.image.save(f"photo{i}.jpg", ContentFile(images.jpeg((320, 240))))
        items.append(item)
    return items


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def ready_count() -> int:
    return Item.objects.filter(image_state="ready").count()


def test_worker_process_publishes_over_http_and_signed_urls_serve_the_bytes(endpoint, start_worker):
    (item,) = upload()
    worker = start_worker("--burst", storages=endpoint.storages())
    assert worker.wait(timeout=60) == 0, worker.stderr.read()
    item.refresh_from_db()
    assert item.image.ready
    thumb = item.image.styles["thumb"]
    assert endpoint.keys() == {
        item.image.name,
        thumb.name,
        item.image.styles["square"].name,
    }
    with urllib.request.urlopen(thumb.url) as response:
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["Cache-Control"] == CACHE
        body = response.read()
    stored = endpoint.client().get_object(Bucket=BUCKET, Key=thumb.name)["Body"].read()
    assert body == stored
    assert not staging_storage().exists(item.image.name)


def test_replace_and_delete_clean_up_over_http(endpoint, start_worker):
    (item,) = upload()
    assert start_worker("--burst", storages=endpoint.storages()).wait(timeout=60) == 0
    item.refresh_from_db()
    first = endpoint.keys()
    item.image.save("again.jpg", ContentFile(images.jpeg((200, 200))))
    assert start_worker("--burst", storages=endpoint.storages()).wait(timeout=60) == 0
    item.refresh_from_db()
    assert endpoint.keys().isdisjoint(first)
    assert len(endpoint.keys()) == 3
    item.delete()
    assert endpoint.keys() == set()


def test_outage_mid_burst_every_attachment_ends_ready_with_nothing_lost(endpoint, start_worker):
    items = upload(50)
    worker = start_worker(
        "--poll-interval",
        "0.05",
        storages=endpoint.storages(),
        settings={"BACKOFF_SCALE": 0.01},
        # Fail fast on a refused connection; the queue's backoff does the retrying.
        environ={"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"},
    )
    wait_for(lambda: ready_count() >= 5, 60, "the first uploads")
    endpoint.stop()
    wait_for(lambda: Job.objects.filter(attempts__gt=0).exists(), 30, "a job to fail on the outage")
    during = ready_count()
    assert during < 50
    # While S3 is down nothing moves to ready, and everything waiting keeps its placeholder.
    assert Item.objects.filter(image_state="processing").count() == 50 - during
    time.sleep(1)
    endpoint.start()
    wait_for(lambda: ready_count() == 50, 120, "every upload to be published")
    worker.terminate()
    assert worker.wait(timeout=30) == 0
    keys = endpoint.keys()
    for item in Item.objects.all():
        for name in (
            item.image.name,
            item.image.styles["thumb"].name,
            item.image.styles["square"].name,
        ):
            assert name in keys
        assert not staging_storage().exists(item.image.name)
    assert len(keys) == 150
    assert Job.objects.count() == 0
    assert {i.pk for i in items} == set(Item.objects.values_list("pk", flat=True))
