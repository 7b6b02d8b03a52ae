"""Delays for retrying transient faults: capped full jitter, and reading ``Retry-After``."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def full_jitter_delay(attempt: int, *, base_s: float, cap_s: float, rand: float) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^(n-1))].

    Full jitter spreads a crowd of clients that failed together, so they do not come back in
    step; ``rand`` is a draw from [0, 1), passed in so the function stays pure.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt - 1, 60))
    return ceiling * min(max(rand, 0.0), 1.0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None.

    Garbage, negative and non-finite values read as "no hint" rather than failing the call.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
