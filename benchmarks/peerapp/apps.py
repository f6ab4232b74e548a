"""Benchmark-only app: one job, "stamp", for our worker and for each peer queue."""

from __future__ import annotations

from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "benchmarks.peerapp"
    label = "attachments_bench_peer"

    def ready(self) -> None:
        from attachments import worker

        from .tasks import stamp_ours

        # process_attachments builds Worker() with its default run: make it the stamp.
        worker.Worker.__init__.__kwdefaults__["run"] = stamp_ours
