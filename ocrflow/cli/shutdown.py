"""Leaving on time: Prefect's queued events and logs get a bounded wait at a command's end.

Prefect sends a run's events and logs from background queues and drains them when the process
exits. Against an API that has gone away for good, that drain retries each item in turn: the
issue measured hours for 1,655 events. A command gives it ``OCRFLOW_EXIT_WAIT_S`` (60 s by
default), then leaves with one line that says what was not delivered; the results are in the
ledger either way.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

DEFAULT_EXIT_WAIT_S = 60.0


def exit_wait_s() -> float:
    """The bound, from ``OCRFLOW_EXIT_WAIT_S`` (a bad value falls back on the default)."""
    try:
        return max(float(os.environ.get("OCRFLOW_EXIT_WAIT_S", DEFAULT_EXIT_WAIT_S)), 0.0)
    except ValueError:
        return DEFAULT_EXIT_WAIT_S


def drain_prefect_queues() -> None:
    """Deliver what Prefect still queues (events, logs), if Prefect was loaded at all."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker  # noqa: PLC0415
    from prefect.logging.handlers import APILogWorker  # noqa: PLC0415

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all()


def leave(code: int, say: Callable[[str], None] | None, *, wait_s: float | None = None) -> None:
    """Exit with ``code`` once Prefect's queues are delivered, or after ``wait_s`` anyway;
    ``say`` tells the user what was left undelivered (None: the caller said it already)."""
    bound = exit_wait_s() if wait_s is None else wait_s
    drained = threading.Event()

    def drain() -> None:
        try:
            drain_prefect_queues()
        finally:
            drained.set()

    threading.Thread(target=drain, name="drain prefect", daemon=True).start()
    if drained.wait(bound):
        sys.exit(code)
    api = os.environ.get("PREFECT_API_URL", "the Prefect API")
    if say is not None:
        say(
            f"the Prefect API ({api}) did not take this run's last events and logs within "
            f"{bound:g} s (OCRFLOW_EXIT_WAIT_S): leaving without them; the results are in the "
            "ledger, and the next command marks the run crashed if it shows as running"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 1)
