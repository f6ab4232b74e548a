"""Publishing to S3 through django-storages, with moto's in-process mock."""

from __future__ import annotations

import io
from datetime import timedelta

import boto3
import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from moto import mock_aws
from PIL import Image

from attachments import leftovers
from attachments.checks import check_settings, check_storages_reachable
from attachments.models import Job
from demo_site.models import Item
from tests import images
from tests.uploads import work

pytestmark = pytest.mark.django_db

BUCKET = "attachments-test"
CACHE = "public, max-age=31536000, immutable"


def s3_storages(**options) -> dict:
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "object_parameters": {"CacheControl": CACHE},
                **options,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def s3(settings):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        settings.STORAGES = s3_storages()
        yield client


def keys(client) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def upload(data: bytes | None = None) -> Item:
    item = Item(title="x")
    item.image.save("photo.jpg", ContentFile(data or images.jpeg((640, 480))))
    return item


def test_request_writes_nothing_to_s3(s3):
    upload()
    assert keys(s3) == set()


def test_worker_publishes_original_and_styles_with_headers(s3):
    item = upload()
    work()
    item.refresh_from_db()
    assert item.image.ready
    names = {item.image.name, item.image.styles["thumb"].name, item.image.styles["square"].name}
    assert keys(s3) == names
    for name in names:
        head = s3.head_object(Bucket=BUCKET, Key=name)
        assert head["ContentType"] == "image/jpeg"
        assert head["CacheControl"] == CACHE
    body = s3.get_object(Bucket=BUCKET, Key=item.image.styles["square"].name)["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (200, 200)
    with item.image.styles["thumb"].storage.open(item.image.styles["thumb"].name) as fp:
        assert Image.open(fp).size == (100, 75)


def test_png_styles_are_image_png(s3):
    item = upload(images.png((300, 300), mode="RGBA"))
    work()
    item.refresh_from_db()
    head = s3.head_object(Bucket=BUCKET, Key=item.image.styles["thumb"].name)
    assert head["ContentType"] == "image/png"


def test_urls_are_signed_for_private_buckets_and_plain_for_public(s3, settings):
    item = upload()
    work()
    item.refresh_from_db()
    url = item.image.styles["thumb"].url
    assert item.image.styles["thumb"].name in url
    assert "Signature=" in url or "X-Amz-Signature=" in url
    settings.STORAGES = s3_storages(querystring_auth=False)
    item = Item.objects.get(pk=item.pk)
    assert "Signature" not in item.image.styles["thumb"].url


def test_replacing_deletes_the_old_objects_after_the_new_ones_are_ready(s3):
    item = upload()
    work()
    item.refresh_from_db()
    old = keys(s3)
    item.image.save("new.jpg", ContentFile(images.jpeg((300, 200))))
    assert keys(s3) == old
    work()
    item.refresh_from_db()
    assert keys(s3).isdisjoint(old)
    assert item.image.name in keys(s3)


def test_deleting_the_record_deletes_its_objects(s3, django_capture_on_commit_callbacks):
    item = upload()
    work()
    item.refresh_from_db()
    assert keys(s3)
    with django_capture_on_commit_callbacks(execute=True):
        item.delete()
    assert keys(s3) == set()


def test_missing_bucket_is_retried_with_a_clear_error_and_nothing_lost(s3):
    item = upload()
    s3.delete_bucket(Bucket=BUCKET)
    work()
    job = Job.objects.get()
    assert job.state == "retrying"
    assert "NoSuchBucket" in job.last_error
    item.refresh_from_db()
    assert item.image.processing
    assert item.image.url == item.image.field.placeholder_url


def test_deploy_check_reports_an_unreachable_bucket(s3, settings):
    assert check_storages_reachable() == []
    settings.STORAGES = s3_storages(bucket_name="no-such-bucket")
    errors = check_storages_reachable()
    assert [e.id for e in errors] == ["attachments.E201"]
    assert "demo_site.Item.image" in errors[0].msg


def test_s3_storage_without_cache_control_is_warned_about(s3, settings):
    field = Item._meta.get_field("image")
    assert "attachments.W001" not in [m.id for m in field.check()]
    settings.STORAGES = s3_storages(object_parameters={})
    assert "attachments.W001" in [m.id for m in field.check()]


def with_s3_staging(settings, location: str) -> None:
    settings.STORAGES = {
        **s3_storages(location="media"),
        "staging": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**s3_storages()["default"]["OPTIONS"], "location": location},
        },
    }
    settings.ATTACHMENTS = {"STAGING_STORAGE": "staging"}


def test_leftovers_on_an_s3_staging_prefix_go_after_the_grace_period(s3, settings, monkeypatch):
    with_s3_staging(settings, "staging")
    kept = upload()
    gone = Item(title="rolled back")
    try:
        with transaction.atomic():
            gone.image.save("gone.jpg", ContentFile(images.jpeg((64, 48))))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    staged = {f"staging/{kept.image.name}", f"staging/{gone.image.name}"}
    assert keys(s3) == staged
    assert leftovers.sweep(timedelta(hours=24)) == 0  # both recent
    later = timezone.now() + timedelta(hours=25)
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: later)
        assert leftovers.sweep(timedelta(hours=24)) == 1
    assert keys(s3) == {f"staging/{kept.image.name}"}


def test_an_s3_staging_prefix_holding_published_objects_is_refused(s3, settings):
    with_s3_staging(settings, "")  # the whole bucket, "media/" included
    assert "attachments.E130" in [message.id for message in check_settings()]
    s3.put_object(Bucket=BUCKET, Key=f"media/items/{'a' * 32}/a.jpg", Body=b"x")
    assert leftovers.sweep(timedelta(0)) == 0
    assert f"media/items/{'a' * 32}/a.jpg" in keys(s3)
