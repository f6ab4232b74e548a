"""A local S3 endpoint for the demo: moto's server on a loopback port, kept on disk.

Run by the Procfile's ``s3`` process; the demo's settings point the final
storage at it unless AWS_STORAGE_BUCKET_NAME names a real bucket.

moto keeps objects in memory only, while the demo's SQLite rows outlive it: a
second ``make demo`` showed every earlier image broken. So the bucket is
mirrored into a directory (DEMO_S3_DIR, default ``media/demo-s3``) once a
second and when the process stops, and restored from it on start, through
the S3 API only. A crash loses at most the last second's writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"
PORT = int(os.environ.get("DEMO_S3_PORT", "9000"))
ENDPOINT = f"http://{HOST}:{PORT}"
BUCKET = "demo-attachments"
CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo-secret"}
REGION = "us-east-1"
STATE_DIR = Path(
    os.environ.get("DEMO_S3_DIR", Path(__file__).resolve().parent.parent / "media" / "demo-s3")
)
SYNC_EVERY = 1.0  # seconds
# What an object keeps besides its bytes (django-storages sets these).
HEADERS = ("ContentType", "CacheControl", "ContentEncoding", "ContentDisposition")


class Mirror:
    """A directory kept in step with one bucket: a file per object and an index of them."""

    def __init__(self, client: Any, bucket: str, directory: Path) -> None:
        self.client, self.bucket, self.directory = client, bucket, directory
        self.index_path = directory / "index.json"
        # key -> {"file": name in directory, "etag": ..., header: value, ...}
        self.index: dict[str, dict[str, str]] = {}

    def restore(self) -> int:
        """Put every mirrored object back in the bucket; return how many."""
        if not self.index_path.exists():
            return 0
        self.index = json.loads(self.index_path.read_text())
        for key, entry in self.index.items():
            headers = {name: entry[name] for name in HEADERS if name in entry}
            body = (self.directory / entry["file"]).read_bytes()
            put = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **headers)
            entry["etag"] = put["ETag"]  # a multipart upload's ETag was another
        return len(self.index)

    def sync(self) -> None:
        """Write new and changed objects to the directory, and forget deleted ones."""
        listed: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            listed.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
        gone = [key for key in self.index if key not in listed]
        changed = [
            key for key, etag in listed.items() if self.index.get(key, {}).get("etag") != etag
        ]
        if not (gone or changed):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for key in changed:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.NoSuchKey:
                continue  # deleted since the listing; the next sync forgets it
            name = hashlib.sha256(key.encode()).hexdigest()
            _write(self.directory / name, response["Body"].read())
            self.index[key] = {
                "file": name,
                "etag": response["ETag"],
                **{header: response[header] for header in HEADERS if response.get(header)},
            }
        files = [self.index.pop(key)["file"] for key in gone]
        # The index changes in one step, before the files it no longer names go.
        _write(self.index_path, json.dumps(self.index, indent=1).encode())
        for name in files:
            (self.directory / name).unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def main() -> None:
    server = ThreadedMotoServer(ip_address=HOST, port=PORT, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    mirror = Mirror(client, BUCKET, STATE_DIR)
    restored = mirror.restore()
    print(
        f"Local S3 endpoint on {ENDPOINT}, bucket {BUCKET!r}, "
        f"{restored} object(s) restored from {STATE_DIR}",
        flush=True,
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(SYNC_EVERY):
        try:
            mirror.sync()
        except Exception as exc:  # the disk or the server hiccuped: the next round retries
            print(f"Mirroring the bucket to {STATE_DIR} failed: {exc}", file=sys.stderr)
    mirror.sync()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
