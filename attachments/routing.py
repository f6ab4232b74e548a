"""Which queues a worker serves, and in what order it looks at them.

``--queue a --queue b`` is strict: ``b`` is served only while ``a`` is empty.
``--queue a,10 --queue b,1`` is weighted, like Sidekiq: each look at the table
orders the queues at random with ``a`` ten times as likely to come first, so
``a`` gets most of the attention and ``b`` is never starved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueOrder:
    names: tuple[str, ...] = ()
    weights: tuple[int, ...] | None = None  # None: strict order

    @classmethod
    def parse(cls, specs: list[str]) -> QueueOrder:
        """Build from ``--queue`` values such as ``"images"`` or ``"images,10"``."""
        names, weights = [], []
        for spec in specs:
            name, _, weight = spec.partition(",")
            name = name.strip()
            if not name:
                raise ValueError(f"{spec!r}: a queue needs a name.")
            if weight and (not weight.strip().isdigit() or int(weight) < 1):
                raise ValueError(f"{spec!r}: the weight must be a positive integer.")
            if name in names:
                raise ValueError(f"Queue {name!r} is given twice.")
            names.append(name)
            weights.append(int(weight) if weight else None)
        if any(w is not None for w in weights):
            return cls(tuple(names), tuple(w or 1 for w in weights))
        return cls(tuple(names))

    def order(self, rng: random.Random | None = None) -> tuple[str, ...]:
        """Return the queues to try for one claim; empty means every queue."""
        if self.weights is None:
            return self.names
        choices = rng.choices if rng else random.choices
        names, weights, chosen = list(self.names), list(self.weights), []
        while names:
            index = choices(range(len(names)), weights=weights)[0]
            chosen.append(names.pop(index))
            weights.pop(index)
        return tuple(chosen)

    def __str__(self) -> str:
        if not self.names:
            return "every queue"
        if self.weights is None:
            return " > ".join(self.names)
        return ", ".join(f"{n} ({w})" for n, w in zip(self.names, self.weights, strict=True))
