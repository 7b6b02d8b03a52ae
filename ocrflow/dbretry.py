"""Ledger writes that ride out a database restart: transient errors retried, with a budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ocrflow.redact import mask_credentials

T = TypeVar("T")

# Writes at a run's end (giving leases back, keeping why a job was left) wait at most this
# long for a ledger that is away, so a run whose ledger is gone for good still ends soon.
END_OF_RUN_BUDGET_S = 10.0


def end_of_run_budget(ledger_retry_s: float) -> float:
    """How long an end-of-run ledger write is retried: the ledger retry setting, capped."""
    return min(ledger_retry_s, END_OF_RUN_BUDGET_S)


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


def describe_ledger_error(exc: BaseException) -> str:
    """Why a ledger write failed, in words a report can carry: a transient fault names the
    ledger as unreachable (the job is left for the next run); the credentials are masked."""
    cause = mask_credentials(f"{type(exc).__name__}: {exc}")
    if is_transient_db_error(exc):
        return f"the ledger could not be reached ({cause}); left unfinished for the next run"
    return cause
