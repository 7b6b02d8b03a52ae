"""A sweep's lease on its jobs: the name its claims go by, and keeping it alive from a
thread of its own."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable
from types import TracebackType

from ocrflow.ledger import Fence, Ledger


def claim_for_run(run_id: str | None) -> str:
    """The name a sweep's leases go by: its flow run first, so that a parent flow can tell
    which of its shard runs stopped renewing (and a clean-up which runs crashed), then where
    it runs."""
    return f"{run_id or uuid.uuid4()}@{socket.gethostname()[:30]}:{os.getpid()}"


def run_of_claim(claim: str) -> str:
    """The flow run (or random id) a claim was made for."""
    return claim.partition("@")[0]


async def release_runs(ledger: Ledger, run_ids: set[str]) -> int:
    """Give back every job the flow runs ``run_ids`` lease (runs known to be dead, such as
    runs marked Crashed); how many claims were given back."""
    given = 0
    for lease in await ledger.leases():
        if run_of_claim(lease.claim) in run_ids:
            await ledger.release_claim(lease.claim)
            given += 1
    return given


class LeaseKeeper:
    """Renews ``claim``'s lease every third of ``lease_s`` until stopped, from its own thread,
    event loop and ledger connection; with ``fence``, also tells ``on_lost`` (from its thread)
    when another run has taken over some of the jobs.

    Why a thread: a flow's event loop can be busy for seconds at a time under load (decoding,
    storing, task-run bookkeeping). Renewals made on it came more than 4 s late with two shards
    on a busy 2-core machine, and a 6 s lease ran out under a live shard, which was then taken
    over. A thread of its own gets its turn every few milliseconds whatever the loop is doing.
    """

    def __init__(
        self,
        ledger_url: str,
        claim: str,
        lease_s: float,
        warn: Callable[[str], object],
        *,
        fence: Fence | None = None,
        on_lost: Callable[[list[str]], object] | None = None,
    ) -> None:
        self.ledger_url, self.claim, self.lease_s, self.warn = ledger_url, claim, lease_s, warn
        self.fence, self.on_lost = fence, on_lost
        self.renewals = 0
        self.lost: list[str] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {claim}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            ledger = loop.run_until_complete(Ledger.open(self.ledger_url, upgrade=False))
        except Exception as exc:  # the lease then lasts its length: the next sweep takes over
            self.warn(f"cannot keep the lease of {self.claim} alive: {exc}")
            loop.close()
            return
        try:
            while not self._stopped.wait(self.lease_s / 3):
                try:
                    loop.run_until_complete(ledger.renew_claim(self.claim, lease_s=self.lease_s))
                    self.renewals += 1
                    if self.fence is not None and not self.lost:
                        self._check_taken_over(loop, ledger)
                except Exception as exc:  # the next renewal may work; the lease outlives a miss
                    self.warn(f"could not renew the lease of {self.claim}: {exc}")
        finally:
            loop.run_until_complete(ledger.close())
            loop.close()

    def _check_taken_over(self, loop: asyncio.AbstractEventLoop, ledger: Ledger) -> None:
        """A run that stalled past its lease finds its jobs taken over: it is told, once."""
        assert self.fence is not None  # noqa: S101 - the caller checked
        lost = loop.run_until_complete(ledger.taken_over(self.fence))
        if lost:
            self.lost = lost
            self.warn(
                f"{len(lost)} job(s) of {self.claim} were taken over by another run (this one "
                "stalled past its lease): this run stops and writes nothing more for them"
            )
            if self.on_lost is not None:
                self.on_lost(lost)
