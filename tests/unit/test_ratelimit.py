"""The shared request budget: evenly spaced, never faster than its rate."""

from __future__ import annotations

import asyncio

import pytest

from ocrflow.ratelimit import RateLimiter
from tests.unit.fakes import FakeClock


async def test_acquisitions_are_spaced_by_the_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await limiter.acquire()
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])
    assert limiter.waited_s == pytest.approx(0.3)


async def test_concurrent_callers_share_one_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(6)))
    assert clock.now - 1000.0 == pytest.approx(1.0)  # six slots at 5/s span one second


async def test_idle_time_is_not_banked_as_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    clock.now += 10
    await limiter.acquire()
    await limiter.acquire()
    assert clock.sleeps == [0.5]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="above 0"):
        RateLimiter(0)
