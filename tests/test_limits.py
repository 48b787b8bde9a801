"""The token bucket behind each endpoint's requests and tokens per window, rule by rule.

A fake clock and a sleep that only moves it: no test waits.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from prose_sim.models.limits import EndpointLimits, TokenBucket, window_bucket

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()  # others may run meanwhile, as in a real wait


def bucket(capacity: float = 10.0, rate: float = 2.0) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(capacity, rate, clock=clock, sleep=clock.sleep), clock


async def test_a_charge_that_fits_is_taken_at_once():
    b, clock = bucket()
    await b.acquire(4)
    await b.acquire(6)
    assert b.level == 10 and clock.slept == []


def test_the_bucket_drains_at_its_rate_and_never_below_empty():
    b, clock = bucket(capacity=10, rate=2)
    b.adjust(8)
    clock.now = 1.5
    assert b.level == 5
    clock.now = 100
    assert b.level == 0


def test_the_wait_is_the_time_until_the_charge_fits():
    b, clock = bucket(capacity=10, rate=2)
    b.adjust(10)
    assert b.wait_s(4) == 2.0  # 4 must drain at 2 per second
    clock.now = 1
    assert b.wait_s(4) == 1.0
    assert b.wait_s(0) == 0.0


async def test_a_charge_that_does_not_fit_waits_until_it_does():
    b, clock = bucket(capacity=10, rate=2)
    await b.acquire(10)
    await b.acquire(3)
    assert clock.slept == [1.5] and b.level == 10


async def test_waiters_are_served_first_come_first_served_even_a_smaller_later_one():
    b, _ = bucket(capacity=10, rate=1)
    b.adjust(10)
    served: list[str] = []

    async def charge(name: str, amount: float) -> None:
        await b.acquire(amount)
        served.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(charge, "first, 5", 5)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(charge, "second, 1", 1)  # would fit sooner, but waits its turn
    assert served == ["first, 5", "second, 1"]


async def test_a_charge_over_the_capacity_is_refused():
    b, _ = bucket(capacity=10)
    with pytest.raises(ValueError, match="capacity"):
        await b.acquire(11)


def test_an_adjustment_corrects_the_level_and_a_refund_stops_at_empty():
    b, _ = bucket(capacity=10)
    b.adjust(6)
    b.adjust(-2)  # charged 2 more than was used
    assert b.level == 4
    b.adjust(-50)
    assert b.level == 0
    b.adjust(30)  # used more than charged: the bucket may hold more than its capacity
    assert b.level == 30


def test_an_endpoint_bucket_holds_the_burst_share_and_drains_the_budget_per_window():
    b = window_bucket(600, EndpointLimits(rpm=600, window_s=60.0, burst=0.9))
    assert b.capacity == 540 and b.rate == 10
    assert window_bucket(1, EndpointLimits(rpm=1, burst=0.5)).capacity == 1  # at least one request
