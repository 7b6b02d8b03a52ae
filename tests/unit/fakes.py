"""Test doubles shared by the unit tests: a fake clock whose sleep only moves time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocrflow.clock import Clock


class FakeClock:
    """A monotonic clock that advances only when ``sleep`` is awaited; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        self.sleeps.append(seconds)
        self.now += seconds


class ManualClock(Clock):
    """Wall time that moves only when told (``advance``) or slept on: for the ledger's leases
    and ages, with no real wait. Starts at the real time, so rows stamped by the database's
    own defaults stay in order with it."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
