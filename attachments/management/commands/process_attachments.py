from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router

from attachments.management.arguments import count, priority_type, seconds
from attachments.models import Job
from attachments.routing import QueueOrder
from attachments.worker import Worker, stop_signal_pending

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
                "in the order given; with weights (--queue urgent,10 --queue default,1) "
                "each is looked at in proportion. Default: every queue."
            ),
        )
        parser.add_argument(
            "--concurrency",
            type=count,
            default=1,
            metavar="N",
            help="Run N jobs at once (threads; use about one per core).",
        )
        parser.add_argument(
            "--min-priority",
            type=priority_type,
            default=None,
            metavar="P",
            help="Only run jobs of priority P or higher.",
        )
        parser.add_argument(
            "--max-priority",
            type=priority_type,
            default=None,
            metavar="P",
            help="Only run jobs of priority P or lower.",
        )
        parser.add_argument(
            "--poll-interval",
            type=seconds,
            default=None,
            metavar="SECONDS",
            help="How long an idle worker waits between looks at the job table "
            "(default: POLL_INTERVAL).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=seconds,
            default=None,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, how long running jobs may take before they are put back "
            "(default: SHUTDOWN_TIMEOUT).",
        )

    as_program = False  # run by manage.py, not call_command()

    def run_from_argv(self, argv: list[str]) -> None:
        self.as_program = True
        super().run_from_argv(argv)

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
        skip_checks: bool,
        **_: Any,
    ) -> None:
        try:
            order = QueueOrder.parse(queues)
        except ValueError as exc:
            raise CommandError(f"--queue {exc}") from exc
        if min_priority is not None and max_priority is not None and min_priority > max_priority:
            raise CommandError(
                f"--min-priority {min_priority} is above --max-priority {max_priority}: "
                "no job could run."
            )
        if not skip_checks:
            # Does the server claim as the queue needs? Checks run before a
            # command leave the database alone; this one asks it.
            self.check(tags=[checks.Tags.database], databases=[router.db_for_write(Job)])
        self._configure_logging(verbosity)
        worker = Worker(
            queues=order,
            burst=burst,
            concurrency=concurrency,
            poll_interval=poll_interval,
            min_priority=min_priority,
            max_priority=max_priority,
            shutdown_timeout=shutdown_timeout,
            # Run as a program, the process exits right after the worker: a
            # second signal during that exit is held back and counted below.
            hold_signals=self.as_program,
        )
        stats = worker.run()
        self.stdout.write(str(stats))
        late = worker.hold_signals and worker.signalled and stop_signal_pending()
        if worker.forced or late:
            self.stdout.flush()
            sys.exit(1)

    def _configure_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("attachments")
        logger.setLevel(_LEVELS.get(verbosity, logging.INFO))
        if not logger.handlers and not logging.getLogger().handlers:
            # The stream under the OutputWrapper, which would style log lines as errors.
            handler = logging.StreamHandler(cast(TextIO, self.stderr._out))
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
