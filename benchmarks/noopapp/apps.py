from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def noop(job: Any) -> Any:
    from attachments import processing

    return processing.Outcome.READY


class NoopConfig(AppConfig):
    name = "benchmarks.noopapp"
    label = "attachments_bench_noop"

    def ready(self) -> None:
        from attachments import processing, worker

        # What a job does is the same no-op for every transport, so the figures
        # are the transport's own cost: tasks.py calls processing.run, and
        # process_attachments builds Worker() with its default run.
        processing.run = noop
        worker.Worker.__init__.__kwdefaults__["run"] = noop
