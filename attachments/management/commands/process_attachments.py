from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from attachments.worker import Worker

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Run a worker that makes the styles of uploaded attachments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Work off every due job, then exit.",
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            metavar="NAME",
            help="Serve only this queue (repeatable). Default: every queue.",
        )
        parser.add_argument(
            "--poll-interval",
            type=_positive_float,
            default=None,
            metavar="SECONDS",
            help="How long an idle worker waits between looks at the job table.",
        )

    def handle(
        self,
        *,
        burst: bool,
        queues: list[str],
        poll_interval: float | None,
        verbosity: int,
        **_: Any,
    ) -> None:
        self._configure_logging(verbosity)
        stats = Worker(queues=queues, burst=burst, poll_interval=poll_interval).run()
        self.stdout.write(str(stats))

    def _configure_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("attachments")
        logger.setLevel(_LEVELS.get(verbosity, logging.INFO))
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler(self.stderr._out)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
