"""Whether the service answers: how long it has been unreachable (or refusing the
credentials), and when that deserves an alert, once per outage.

A run retries a service that is down for as long as its polling deadline allows (hours), at
INFO level: nobody hears of it. The client tells this tracker of every answer and failure;
the flow asks it, now and then, whether to alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ServiceHealth:
    """The service's reachability as one client sees it."""

    clock: Callable[[], float] = field(default=time.monotonic)
    down_since: float | None = None
    last_error: str | None = None
    failures: int = 0  # failed calls of the present outage
    alerted: bool = False  # this outage has been alerted on

    def failed(self, why: str) -> None:
        """A call found the service unreachable, failing (5xx) or refusing the credentials."""
        if self.down_since is None:
            self.down_since = self.clock()
        self.last_error = why
        self.failures += 1

    def answered(self) -> None:
        """The service answered as it should: any outage is over."""
        self.down_since, self.last_error, self.failures, self.alerted = None, None, 0, False

    def down_for(self) -> float:
        """Seconds since the present outage began (0 when the service answers)."""
        return 0.0 if self.down_since is None else self.clock() - self.down_since

    def due_alert(self, after_s: float) -> bool:
        """True once per outage, when it has lasted ``after_s``."""
        if self.alerted or self.down_since is None or self.down_for() < after_s:
            return False
        self.alerted = True
        return True
