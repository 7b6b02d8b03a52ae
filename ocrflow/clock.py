"""The time a run goes by: one object to read the wall clock and to wait, injected.

Flows and tasks never call ``datetime.now``, ``time.monotonic`` or ``asyncio.sleep``
themselves: they ask the run's :class:`Clock`, so that a test can hand them one that moves by
hand.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class Clock:
    """The real clock: zone-aware UTC wall time, and sleeping on the event loop."""

    def now(self) -> datetime:
        """The current time, in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for measuring how long something took."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (nothing for zero or less)."""
        if seconds > 0:
            await asyncio.sleep(seconds)
