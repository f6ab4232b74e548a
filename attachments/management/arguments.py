"""argparse ``type=`` validators the commands share: a bad value is a usage error."""

from __future__ import annotations

import argparse
import math


# argparse reports a ValueError from a type function as "invalid <function
# name> value"; an ArgumentTypeError's message is shown as it is.
def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {value!r}")
    return number


def count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {value!r}")
    return number


def priority_type(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number (higher runs first), got {value!r}"
        ) from None
