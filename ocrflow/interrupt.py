"""A process-wide request to stop sending: SIGINT or SIGTERM while images are being submitted.

Submissions under way finish and are recorded; none is started after the request. A second
signal is left to its default (the process ends at once), so a user is never stuck.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SENDING = threading.Event()


def stop_requested() -> bool:
    """True once a stop was asked for in this process."""
    return STOP_SENDING.is_set()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """While inside, the first SIGINT or SIGTERM sets :data:`STOP_SENDING` (the second acts as
    usual); the previous handlers (Prefect's SIGTERM bridge among them) come back on the way
    out. Off the main thread it installs nothing."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        STOP_SENDING.set()
        signal.signal(signum, previous[signal.Signals(signum)])  # a second signal: its usual effect

    STOP_SENDING.clear()
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
