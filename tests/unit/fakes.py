"""Test doubles shared by the unit tests: a fake clock whose sleep only moves time."""

from __future__ import annotations


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
