"""A request budget shared by every call of a client: at most R requests a second, evenly spaced.

The vendor bills per call and may answer 429 beyond a rate; spacing requests on the client
keeps a whole run (all its polls, submissions and retries) under the budget instead of
learning it from 429s. Clock and sleep are injected for tests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """Spaces acquisitions ``1 / rate_per_s`` apart; waiters are served in arrival order."""

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate must be above 0, got {rate_per_s}")
        self.interval_s = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    async def acquire(self) -> None:
        """Wait for the next slot of the budget."""
        async with self._lock:
            now = self._clock()
            wait = self._next - now
            if wait > 0:
                self.waited_s += wait
                await self._sleep(wait)
                now = self._next
            self._next = now + self.interval_s
