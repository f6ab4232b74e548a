from __future__ import annotations

import random
from collections import Counter

import pytest

from attachments.routing import QueueOrder


def test_no_queues_means_every_queue():
    order = QueueOrder.parse([])
    assert order.order() == ()
    assert str(order) == "every queue"


def test_plain_names_are_strict_in_the_order_given():
    order = QueueOrder.parse(["urgent", "default"])
    assert all(order.order() == ("urgent", "default") for _ in range(20))
    assert str(order) == "urgent > default"


def test_weighted_queues_come_first_in_proportion_and_none_starves():
    order = QueueOrder.parse(["urgent,10", "default,1"])
    rng = random.Random(1)
    firsts = Counter(order.order(rng)[0] for _ in range(11_000))
    assert 9_500 < firsts["urgent"] < 10_500
    assert firsts["default"] > 500
    # Every claim still looks at every queue, so default is served when urgent is empty.
    assert sorted(order.order(rng)) == ["default", "urgent"]


def test_a_queue_without_weight_among_weighted_ones_weighs_one():
    assert QueueOrder.parse(["a,3", "b"]).weights == (3, 1)


@pytest.mark.parametrize("specs", [[","], ["a,0"], ["a,x"], ["a,-1"], ["a", "a,2"]])
def test_bad_queue_specs(specs):
    with pytest.raises(ValueError, match=r"queue|weight|twice"):
        QueueOrder.parse(specs)
