"""The jobs a crashed run had leased are given back when the run is marked Crashed, so the
next sweep settles them now instead of waiting for the lease to run out."""

from __future__ import annotations

from pathlib import Path

from ocrflow.cli.orphans import release_leases_of
from ocrflow.leases import claim_for_run
from ocrflow.ledger import Ledger
from tests.ledger.test_ledger import REGIONS, job_id


async def test_the_leases_of_crashed_runs_are_given_back_and_no_other(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    ledger = await Ledger.open(url)
    try:
        for number in range(5):
            await ledger.record_job(
                job_id(number), image_sha256=None, source=None, regions=REGIONS, settings={}
            )
        crashed, alive = claim_for_run("run-crashed"), claim_for_run("run-alive")
        assert len(await ledger.claim_unfinished(crashed, lease_s=3600, limit=3)) == 3
        assert len(await ledger.claim_unfinished(alive, lease_s=3600, limit=2)) == 2
        assert await ledger.claimable_count() == 0

        assert await release_leases_of(url, {"run-crashed", "run-never-seen"}) == 1

        assert await ledger.claimable_count() == 3  # the crashed run's, at once
        held = {lease.claim: lease.jobs for lease in await ledger.leases()}
        assert held == {alive: 2}  # the live run keeps its own
    finally:
        await ledger.close()
