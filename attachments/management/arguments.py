"""argparse ``type=`` validators the commands share: a bad value is a usage error."""

from __future__ import annotations


def positive_float(value: str) -> float:
    """A number above zero."""
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


def positive_int(value: str) -> int:
    """A whole number of at least one."""
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number
