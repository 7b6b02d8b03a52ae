"""The lease keeper renews from its own thread: a busy event loop does not let a lease lapse."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ocrflow.leases import LeaseKeeper
from ocrflow.ledger import Ledger

JOB = "00000000-0000-4000-8000-000000000001"


async def test_a_lease_stays_live_while_the_event_loop_is_busy(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    ledger = await Ledger.open(url)
    try:
        await ledger.record_job(JOB, image_sha256=None, source=None, regions=[], settings={})
        assert await ledger.claim_unfinished("busy-sweep", lease_s=1.5) == [JOB]
        warnings: list[str] = []
        with LeaseKeeper(url, "busy-sweep", 1.5, warnings.append) as keeper:
            busy_until = time.monotonic() + 4.0  # over two leases long, the loop never yields
            while time.monotonic() < busy_until:
                pass
            assert await ledger.claimable_count() == 0  # still held: renewed meanwhile
        assert keeper.renewals >= 1  # (the 1.5 s lease would have run out without)
        assert warnings == []
        await asyncio.sleep(1.6)  # stopped: the lease runs out, as a dead sweep's does
        assert await ledger.claimable_count() == 1
    finally:
        await ledger.close()


async def test_a_keeper_that_cannot_reach_the_ledger_says_so(tmp_path: Path) -> None:
    warnings: list[str] = []
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x' / '..' / 'ledger.db'}"
    blocked = tmp_path / "missing"
    blocked.write_text("a file where a folder should be")
    with LeaseKeeper(unreachable, "sweep", 0.3, warnings.append):
        await asyncio.sleep(0.2)
    assert len(warnings) == 1
    assert "cannot keep the lease of sweep alive" in warnings[0]
