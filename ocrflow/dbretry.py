"""Ledger writes that ride out a database restart: transient errors retried, with a budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")


def is_transient_db_error(exc: BaseException) -> bool:
    """A lost connection, a restarting server, a lock timeout: the same write may pass soon.

    An integrity or programming error is no such thing, and is raised at once.
    """
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError)


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    budget_s: float,
    first_delay_s: float = 0.2,
    max_delay_s: float = 3.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``operation``; on a transient database error, again after a growing wait, until
    ``budget_s`` has passed (then the last error is raised)."""
    started = clock()
    delay = first_delay_s
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient_db_error(exc) or clock() - started + delay > budget_s:
                raise
        await sleep(delay)
        delay = min(delay * 2, max_delay_s)
