"""The time a run goes by: one object to read the wall clock and to wait, injected.

Flows and tasks never call ``datetime.now`` or ``asyncio.sleep`` themselves: they ask the
run's :class:`Clock`, so that a test can hand them one that moves by hand.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime


class Clock:
    """The real clock: zone-aware UTC wall time, and sleeping on the event loop."""

    def now(self) -> datetime:
        """The current time, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (nothing for zero or less)."""
        if seconds > 0:
            await asyncio.sleep(seconds)
