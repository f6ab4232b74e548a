"""The part of the queue that differs by database: putting jobs in, taking the next one out.

``queue.enqueue``, ``queue.claim`` and ``queue.complete`` ask
``for_database(using)`` for the database's ``Claimer`` and call it; one module
per vendor says how that database claims a job in one commit, deleting the
jobs the worker finished since its last claim in that same commit, and, where
it can do better than the portable ORM path, how it queues one in one statement.
"""

from __future__ import annotations

import functools
import importlib

from django.db import connections

from .base import Batch, Claimer, merge_previous

__all__ = ["VENDORS", "Batch", "Claimer", "claimer_class", "for_database", "merge_previous"]

# Django's ``connection.vendor`` values, each the name of the module that claims on it.
VENDORS = ("mysql", "postgresql", "sqlite")


@functools.cache
def for_database(using: str) -> Claimer:
    """Return the claimer of database ``using``; NotImplementedError for another vendor."""
    return claimer_class(connections[using].vendor)(using)


def claimer_class(vendor: str) -> type[Claimer]:
    """Return the class that claims on ``vendor``; NotImplementedError for another vendor."""
    if vendor not in VENDORS:
        raise NotImplementedError(
            f"The database queue does not run on {vendor!r}; it runs on {', '.join(VENDORS)}."
        )
    claimer: type[Claimer] = importlib.import_module(f"{__name__}.{vendor}").claimer
    return claimer
