from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attachments.management.arguments import positive_float, positive_int
from attachments.routing import QueueOrder
from attachments.worker import Worker

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = "Run a worker that makes the styles of uploaded attachments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--burst", action="store_true", help="Work off every due job, then exit."
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            metavar="NAME[,WEIGHT]",
            help=(
                "Serve this queue (repeatable). Without weights queues are served strictly "
                "in the order given; with weights (-q urgent,10 -q default,1) each is looked "
                "at in proportion. Default: every queue."
            ),
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=1,
            metavar="N",
            help="Run N jobs at once (threads; use about one per core).",
        )
        parser.add_argument("--min-priority", type=int, default=None, metavar="P")
        parser.add_argument("--max-priority", type=int, default=None, metavar="P")
        parser.add_argument(
            "--poll-interval",
            type=positive_float,
            default=None,
            metavar="SECONDS",
            help="How long an idle worker waits between looks at the job table.",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=positive_float,
            default=None,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, how long running jobs may take before they are put back.",
        )

    def handle(
        self,
        *,
        burst: bool,
        queues: list[str],
        concurrency: int,
        min_priority: int | None,
        max_priority: int | None,
        poll_interval: float | None,
        shutdown_timeout: float | None,
        verbosity: int,
        **_: Any,
    ) -> None:
        try:
            order = QueueOrder.parse(queues)
        except ValueError as exc:
            raise CommandError(f"--queue {exc}") from exc
        self._configure_logging(verbosity)
        worker = Worker(
            queues=order,
            burst=burst,
            concurrency=concurrency,
            poll_interval=poll_interval,
            min_priority=min_priority,
            max_priority=max_priority,
            shutdown_timeout=shutdown_timeout,
        )
        stats = worker.run()
        self.stdout.write(str(stats))
        if worker.forced:
            self.stdout.flush()
            sys.exit(1)

    def _configure_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("attachments")
        logger.setLevel(_LEVELS.get(verbosity, logging.INFO))
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler(self.stderr._out)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
