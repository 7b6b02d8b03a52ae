"""SIGINT and SIGTERM, handled so that an interrupted run ends well.

Submitting: a process-wide request to stop sending (submissions under way finish and are
recorded; none is started after it). Fetching: the run's task is cancelled, its ``finally``
blocks give the leases back, and :class:`Interrupted` says which signal it was. In both, a
second signal is left to its default (the process ends at once), so a user is never stuck.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType

STOP_SENDING = threading.Event()
_STOP_SIGNALS: list[int] = []


def stop_requested() -> bool:
    """True once a stop was asked for in this process."""
    return STOP_SENDING.is_set()


def stop_signal() -> int | None:
    """The signal that asked the last submission to stop, if one did."""
    return _STOP_SIGNALS[0] if _STOP_SIGNALS else None


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """While inside, the first SIGINT or SIGTERM sets :data:`STOP_SENDING` (the second acts as
    usual); the previous handlers (Prefect's SIGTERM bridge among them) come back on the way
    out. Off the main thread it installs nothing."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _STOP_SIGNALS.append(signum)
        STOP_SENDING.set()
        signal.signal(signum, previous[signal.Signals(signum)])  # a second signal: its usual effect

    STOP_SENDING.clear()
    _STOP_SIGNALS.clear()
    if threading.current_thread() is not threading.main_thread():
        yield STOP_SENDING  # signals reach the main thread only: nothing to install here
        return
    for sig in previous:
        signal.signal(sig, request_stop)
    try:
        yield STOP_SENDING
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Interrupted(Exception):  # noqa: N818 - reads as what happened
    """The work was cancelled by SIGINT or SIGTERM (``signum``); what was done stands."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 130 for SIGINT, 143 SIGTERM."""
        return 128 + self.signum


@asynccontextmanager
async def cancel_on_signals() -> AsyncIterator[None]:
    """While inside, SIGINT or SIGTERM cancels the task that entered, which then raises
    :class:`Interrupted` here: its ``finally`` blocks (leases given back) run first. A second
    signal acts as usual. Off the main thread it installs nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - called from a coroutine
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def cancel(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        signal.signal(signum, previous[signal.Signals(signum)])  # a second one: as usual
        loop.call_soon_threadsafe(task.cancel)

    for sig in previous:
        signal.signal(sig, cancel)
    try:
        yield
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        raise Interrupted(received[0]) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
