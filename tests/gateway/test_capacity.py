"""Capacity (`gateway/capacity.py`): refused past its limit, a slot released once."""

from __future__ import annotations

import pytest

from gateway import metrics
from gateway.capacity import Capacity
from weavewave_common.errors import (
    TooManyRequests,
)


def test_capacity_refuses_past_its_limit_and_a_slot_is_released_once() -> None:
    capacity = Capacity(2, retry_after_s=3)
    first, second = capacity.take(), capacity.take()
    with pytest.raises(TooManyRequests) as full:
        capacity.take()
    assert full.value.retry_after_s == 3 and full.value.code == "at_capacity"
    first.release()
    first.release()  # every exit path may release: only the first counts
    third = capacity.take()
    with pytest.raises(TooManyRequests):
        capacity.take()
    second.release()
    third.release()
    assert metrics.IN_FLIGHT._value.get() == 0
