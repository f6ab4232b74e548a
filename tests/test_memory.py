"""The memory budget a worker's threads share while they decode images."""

from __future__ import annotations

import threading
import time

import pytest

from attachments.memory import MemoryBudget, shared

TIMEOUT = 5.0


class Holder(threading.Thread):
    """Holds ``nbytes`` of ``budget`` from when it gets them until released."""

    def __init__(self, budget: MemoryBudget, nbytes: int) -> None:
        super().__init__(daemon=True)
        self.budget, self.nbytes = budget, nbytes
        self.holding = threading.Event()
        self.release = threading.Event()

    def run(self) -> None:
        with self.budget.hold(self.nbytes):
            self.holding.set()
            self.release.wait(TIMEOUT)

    def done(self) -> None:
        self.release.set()
        self.join(TIMEOUT)


def start(budget: MemoryBudget, nbytes: int) -> Holder:
    holder = Holder(budget, nbytes)
    holder.start()
    time.sleep(0.05)  # let it take its place in line
    return holder


def test_shares_that_fit_are_held_at_once():
    budget = MemoryBudget(100)
    a, b = start(budget, 60), start(budget, 40)
    assert a.holding.wait(TIMEOUT)
    assert b.holding.wait(TIMEOUT)
    assert budget.held == 100
    a.done(), b.done()
    assert budget.held == 0


def test_a_share_that_does_not_fit_waits_for_room():
    budget = MemoryBudget(100)
    a = start(budget, 60)
    b = start(budget, 60)
    assert a.holding.wait(TIMEOUT)
    assert not b.holding.wait(0.2)
    a.done()
    assert b.holding.wait(TIMEOUT)
    b.done()


def test_a_share_larger_than_the_budget_runs_alone():
    budget = MemoryBudget(100)
    small = start(budget, 10)
    huge = start(budget, 500)
    assert not huge.holding.wait(0.2)
    small.done()
    assert huge.holding.wait(TIMEOUT)
    assert budget.held == 500
    huge.done()


def test_later_small_shares_do_not_overtake_a_waiting_big_one():
    budget = MemoryBudget(100)
    first = start(budget, 50)
    big = start(budget, 80)
    small = start(budget, 10)  # would fit now, but the big one came first
    assert not small.holding.wait(0.2)
    first.done()
    assert big.holding.wait(TIMEOUT)
    assert small.holding.wait(TIMEOUT)
    big.done(), small.done()


def test_an_interrupted_wait_leaves_the_line(monkeypatch):
    budget = MemoryBudget(100)
    first = start(budget, 100)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # a worker's second signal, arriving while it waits

    monkeypatch.setattr(budget._changed, "wait_for", interrupted)
    with pytest.raises(KeyboardInterrupt):
        budget.hold(10).__enter__()
    monkeypatch.undo()
    first.done()
    after = start(budget, 10)
    assert after.holding.wait(TIMEOUT)
    after.done()


def test_no_limit_never_waits():
    budget = MemoryBudget(None)
    with budget.hold(10**12), budget.hold(10**12):
        pass


def test_every_thread_shares_the_same_budget():
    assert shared(1234) is shared(1234)
    assert shared(1234) is not shared(None)
