"""What a sharded sweep reads of the ledger: how many jobs are free to lease, who holds the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import task

from ocrflow.ledger import Lease, Ledger
from ocrflow.tasks.credentials import load_settings
from ocrflow.tasks.options import NOT_CACHED


@dataclass(frozen=True)
class LeaseSurvey:
    """Unfinished jobs no live lease holds, and every lease on the others."""

    claimable: int
    leases: list[Lease] = field(default_factory=list)


@task(name="survey-leases", **NOT_CACHED)
async def survey_leases() -> LeaseSurvey:
    """Read the ledger named by the settings (its URL may hold a password: never a parameter)."""
    async with Ledger.connect((await load_settings()).ledger_url) as ledger:
        return LeaseSurvey(await ledger.claimable_count(), await ledger.leases())
