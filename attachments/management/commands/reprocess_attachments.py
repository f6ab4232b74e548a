from __future__ import annotations

import sys
import time
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from attachments.exceptions import ConfigurationError
from attachments.management.arguments import count
from attachments.reprocess import Reprocess, Summary, select

# Without a terminal (a log, a CI job) a plain line this often, in seconds.
LOG_EVERY = 10.0


class Command(BaseCommand):
    help = (
        "Make the styles published attachments lack after styles were added or changed "
        "(resumable: what is made is skipped)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "fields",
            nargs="*",
            metavar="app_label.model.field",
            help="The attachment fields to reprocess (default: all).",
        )
        parser.add_argument(
            "--style",
            action="append",
            dest="styles",
            default=[],
            metavar="NAME",
            help="Only records lacking this style (repeatable).",
        )
        parser.add_argument(
            "--missing-only",
            action="store_true",
            help="Only styles with no file at all (added, or failed), not ones made from an "
            "older declaration.",
        )
        parser.add_argument(
            "--ids", nargs="+", default=[], metavar="PK", help="Only these records."
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Make the styles in this process instead of queueing jobs for the workers.",
        )
        parser.add_argument(
            "--concurrency",
            type=count,
            default=1,
            metavar="N",
            help="With --inline, make N records at once (threads).",
        )
        parser.add_argument(
            "--batch-size",
            type=count,
            default=500,
            metavar="N",
            help="Records read (and jobs queued) per query.",
        )

    def handle(
        self,
        *,
        fields: list[str],
        styles: list[str],
        missing_only: bool,
        ids: list[str],
        inline: bool,
        concurrency: int,
        batch_size: int,
        verbosity: int,
        **_: Any,
    ) -> None:
        try:
            run = Reprocess(
                select(fields),
                styles=styles,
                missing_only=missing_only,
                ids=ids,
                inline=inline,
                concurrency=concurrency,
                batch_size=batch_size,
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        total = run.count()
        interactive = self.stdout.isatty() and verbosity > 0
        out = cast(TextIO, self.stdout._out)
        bar = tqdm(total=total, unit="record", disable=not interactive, file=out)
        started = last = time.monotonic()

        def progress(summary: Summary) -> None:
            nonlocal last
            bar.update(summary.total - bar.n)
            now = time.monotonic()
            if not interactive and verbosity > 0 and now - last >= LOG_EVERY:
                last = now
                rate = summary.total / (now - started)
                self.stdout.write(f"{summary.total}/{total} records, {rate:.1f}/s, {summary}")

        run.progress = progress
        try:
            summary = run.run()
        except KeyboardInterrupt:
            bar.close()
            self.stderr.write("Interrupted; run the same command again to resume.")
            sys.exit(130)
        bar.close()
        for record, error in summary.errors.items():
            self.stderr.write(f"{record}: {error}")
        style = self.style.ERROR if summary.failed else self.style.SUCCESS
        self.stdout.write(style(str(summary)))
        if summary.failed:
            sys.exit(1)
