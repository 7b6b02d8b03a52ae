"""The polling policy: a pure function from attempt, elapsed time and server hints to a delay.

It knows nothing of HTTP, clocks or sleeping; :mod:`ocrflow.poller` runs the loop with an
injected clock and sleep, and the Prefect task turns :meth:`PollPolicy.retry_delays` into its
``retry_delay_seconds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RETENTION_S = 24 * 3600.0  # the service keeps results for 24 h after submission


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Capped exponential polling with small jitter and an overall deadline.

    The n-th wait (1-based) is ``first_delay_s · growth^(n-1)``, capped at ``max_delay_s``,
    scaled by a factor in ``[1 - jitter, 1 + jitter]``. A server's ``Retry-After`` is a floor.
    No wait reaches past ``deadline_s`` after the first poll, which must stay inside the
    service's 24 h retention, so a job that never finishes ends with a clear timeout instead of
    turning into ``NotExist``.
    """

    first_delay_s: float = 1.0
    growth: float = 1.6
    max_delay_s: float = 30.0
    jitter: float = 0.1
    deadline_s: float = 6 * 3600.0

    def __post_init__(self) -> None:
        if self.first_delay_s <= 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError("need 0 < first_delay_s <= max_delay_s")
        if self.growth < 1:
            raise ValueError("growth must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not 0 < self.deadline_s < RETENTION_S:
            raise ValueError(f"deadline_s must be inside the {RETENTION_S:.0f} s retention")

    def base_delay(self, attempt: int) -> float:
        """The un-jittered wait after poll number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        exponent = attempt - 1
        # Compare in log space, so that a huge attempt number cannot overflow a float.
        if self.growth > 1 and exponent * math.log(self.growth) >= math.log(
            self.max_delay_s / self.first_delay_s
        ):
            return self.max_delay_s
        return min(self.first_delay_s * self.growth**exponent, self.max_delay_s)

    def next_delay(
        self,
        attempt: int,
        *,
        elapsed_s: float,
        retry_after_s: float | None = None,
        rand: float = 0.5,
    ) -> float | None:
        """Wait before the next poll, after ``attempt`` polls; None once the deadline has passed.

        ``rand`` is a draw from [0, 1) (0.5 means no jitter); ``retry_after_s`` is the server's
        hint, honoured as a minimum. The last wait is shortened to land on the deadline, so the
        job gets one final look before the policy gives up.
        """
        remaining = self.deadline_s - elapsed_s
        if remaining <= 0:
            return None
        scale = 1.0 + self.jitter * (2.0 * min(max(rand, 0.0), 1.0) - 1.0)
        delay = self.base_delay(attempt) * scale
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, remaining)

    def retry_delays(self) -> list[float]:
        """The un-jittered waits that fit in the deadline, one per retry."""
        delays: list[float] = []
        total = 0.0
        attempt = 1
        while True:
            delay = self.base_delay(attempt)
            if total + delay > self.deadline_s:
                return delays
            delays.append(delay)
            total += delay
            attempt += 1

    def retry_schedule(self, max_entries: int = 50) -> tuple[int, list[float]]:
        """``(retries, delays)`` for a Prefect task: the same waits, in a list it accepts.

        Prefect takes at most 50 delays and repeats the last one when retries outrun the list,
        so the list stops once the cap is reached (or at 50 entries); the retry count still
        covers every poll that fits in the deadline. Prefect adds its own jitter.
        """
        delays = self.retry_delays()
        if not delays:
            return 0, [self.first_delay_s]
        short: list[float] = []
        for delay in delays[:max_entries]:
            short.append(delay)
            if delay >= self.max_delay_s:
                break
        return len(delays), short
