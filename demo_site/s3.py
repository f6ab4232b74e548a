"""A local S3 endpoint for the demo: moto's server on a loopback port, bucket created.

Run by the Procfile's ``s3`` process; the demo's settings point the final
storage at it unless AWS_STORAGE_BUCKET_NAME names a real bucket.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import boto3
from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"
PORT = int(os.environ.get("DEMO_S3_PORT", "9000"))
ENDPOINT = f"http://{HOST}:{PORT}"
BUCKET = "demo-attachments"
CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo-secret"}
REGION = "us-east-1"


def main() -> None:
    server = ThreadedMotoServer(ip_address=HOST, port=PORT, verbose=False)
    server.start()
    boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION, **CREDENTIALS).create_bucket(
        Bucket=BUCKET
    )
    print(f"Local S3 endpoint on {ENDPOINT}, bucket {BUCKET!r}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
