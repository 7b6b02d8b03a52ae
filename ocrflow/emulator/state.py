"""One emulator's state: settings, faults in force, tokens, jobs, counters, the 429 bucket."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from ocrflow.emulator.engine import Engine
from ocrflow.emulator.jobs import JobStore
from ocrflow.emulator.settings import EmulatorSettings, Faults
from ocrflow.emulator.tokens import TokenIssuer


class EmulatorState:
    """Everything one emulator instance holds: settings, faults, tokens, jobs, counters."""

    def __init__(
        self, settings: EmulatorSettings, clock: Callable[[], float], engine: Engine | None
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = random.Random(settings.seed)  # noqa: S311 - fault draws, not secrets
        self._rng_lock = threading.Lock()
        self.tokens = TokenIssuer(settings, clock)
        self.jobs = JobStore(settings, engine, clock, self.rng)
        self.counts: Counter[str] = Counter()
        self._bucket = _TokenBucket()

    @property
    def faults(self) -> Faults:
        """The fault modes in force (the jobs read the same object)."""
        return self.settings.faults

    def set_faults(self, faults: Faults) -> None:
        """Change the fault modes at run time."""
        self.settings.faults = faults
        self.jobs.settings.faults = faults

    def chance(self, share: float) -> bool:
        """True with probability ``share``, from the seeded generator."""
        if share <= 0:
            return False
        with self._rng_lock:
            return self.rng.random() < share

    def rate_limited(self) -> float | None:
        """Seconds to wait when the request rate is over ``rate_limit_rps``, else None."""
        rps = self.faults.rate_limit_rps
        return None if rps is None else self._bucket.take(rps, time.monotonic())


class _TokenBucket:
    """A token bucket holding at most one second's worth of requests."""

    def __init__(self) -> None:
        self._tokens = 0.0
        self._last: float | None = None
        self._lock = threading.Lock()

    def take(self, rate: float, now: float) -> float | None:
        with self._lock:
            capacity = max(rate, 1.0)
            if self._last is None:
                self._tokens = capacity
            else:
                self._tokens = min(capacity, self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / rate
