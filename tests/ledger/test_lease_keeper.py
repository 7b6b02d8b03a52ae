"""The lease keeper renews from its own thread: a busy event loop does not let a lease lapse.

Real time, by nature: the keeper's thread renews on the wall clock while the test's loop is
kept busy. (Lease expiry itself is tested on a manual clock, in test_ledger.py.)"""

from __future__ import annotations

import time
from pathlib import Path

from ocrflow.leases import LeaseKeeper
from ocrflow.ledger import Ledger
from tests.unit.fakes import ManualClock

JOB = "00000000-0000-4000-8000-000000000001"
# Long enough that a renewal (every third of it, from the keeper's own thread and connection,
# sharing the interpreter with the busy loop) lands in time on a loaded two-core CI machine:
# 1.5 s missed once there, when the keeper still checked the schema before its first renewal.
LEASE_S = 4.0


async def test_a_lease_stays_live_while_the_event_loop_is_busy(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    ledger = await Ledger.open(url)
    try:
        await ledger.record_job(JOB, image_sha256=None, source=None, regions=[], settings={})
        assert await ledger.claim_unfinished("busy-sweep", lease_s=LEASE_S) == [JOB]
        warnings: list[str] = []
        with LeaseKeeper(url, "busy-sweep", LEASE_S, warnings.append) as keeper:
            busy_until = time.monotonic() + 2.5 * LEASE_S  # over two leases, never yielding
            while time.monotonic() < busy_until:
                pass
            assert await ledger.claimable_count() == 0  # still held: renewed meanwhile
        assert keeper.renewals >= 1  # (the lease would have run out without)
        assert warnings == []
        # Stopped: the lease runs out, as a dead sweep's does (seen from a ledger whose clock
        # is a lease later; no waiting).
        later = ManualClock()
        later.advance(LEASE_S + 0.1)
        ahead = await Ledger.open(url, clock=later)
        try:
            assert await ahead.claimable_count() == 1
        finally:
            await ahead.close()
    finally:
        await ledger.close()


async def test_a_keeper_that_cannot_reach_the_ledger_says_so(tmp_path: Path) -> None:
    warnings: list[str] = []
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x' / '..' / 'ledger.db'}"
    blocked = tmp_path / "missing"
    blocked.write_text("a file where a folder should be")
    with LeaseKeeper(unreachable, "sweep", 0.3, warnings.append):
        pass  # leaving joins the keeper's thread, which tried to open the ledger first
    assert len(warnings) == 1
    assert "cannot keep the lease of sweep alive" in warnings[0]
