"""What the reliability tests share: seeding jobs, running a sweep, reading the ledger back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrflow.client import OcrClient
from ocrflow.flows.fetch_results import fetch_results
from ocrflow.flows.pipeline import summary_of
from ocrflow.flows.reports import FetchSummary
from ocrflow.ledger import JobRecord, JobState, Ledger
from ocrflow.models import RecognizeRegionsSettings, Rect, Region, to_wire
from ocrflow.settings import OcrflowSettings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = b"simulated scan"  # simulation mode reads no pixels
REGIONS = [Region(rect=Rect.from_xywh(0, 0, 200, 30), order=0)]


async def seed(count: int = 12, settings: OcrflowSettings | None = None) -> list[str]:
    """Submit ``count`` jobs (no fault on yet) and record them, original image kept.

    ``settings``: the service and the ledger (default: from the environment)."""
    settings = settings or OcrflowSettings()
    ledger = await Ledger.open(settings.ledger_url)
    try:
        digest = await ledger.save_image(IMAGE)
        async with OcrClient(settings) as client:
            ids = [await client.submit_regions(IMAGE, REGIONS) for _ in range(count)]
        for job_id in ids:
            await ledger.record_job(
                job_id,
                image_sha256=digest,
                source="scan.png",
                regions=[{"rect": to_wire(REGIONS[0].rect), "order": 0, "name": "field"}],
                settings=to_wire(RecognizeRegionsSettings()),
                image_bytes=len(IMAGE),
            )
    finally:
        await ledger.close()
    return ids


async def sweep(job_ids: list[str] | None) -> tuple[Any, FetchSummary]:
    state = await fetch_results(job_ids=job_ids, return_state=True)
    return state, await summary_of(state, FetchSummary)


@dataclass
class LedgerCheck:
    """What the ledger says of the seeded jobs, followed through their resubmissions."""

    final: dict[str, JobRecord]  # seeded id -> the last job of its chain
    results: Counter[str]  # job id -> result rows
    children: Counter[str] = field(default_factory=Counter)  # job id -> jobs that replace it

    @property
    def lost(self) -> list[str]:
        """Seeded jobs with no recorded end: unfinished and no reason kept."""
        return [
            job_id
            for job_id, job in self.final.items()
            if job.state is JobState.SUBMITTED and not job.last_error
        ]

    @property
    def duplicated(self) -> list[str]:
        """Jobs stored with more rows than regions, or resubmitted more than once."""
        extra_rows = [j for j, rows in self.results.items() if rows > len(REGIONS)]
        return extra_rows + [j for j, n in self.children.items() if n > 1]

    def states(self) -> Counter[str]:
        return Counter(job.state.value for job in self.final.values())


async def check_ledger(seeded: list[str]) -> LedgerCheck:
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        jobs = {job.job_id: job for job in await ledger.jobs()}
        results = Counter(row.job_id for row in await ledger.results())
    finally:
        await ledger.close()
    final: dict[str, JobRecord] = {}
    for job_id in seeded:
        job = jobs[job_id]
        for _ in range(20):  # a chain is at most max_resubmissions long; bounded anyway
            if job.replaced_by is None:
                break
            job = jobs[job.replaced_by]
        final[job_id] = job
    children = Counter(job.replaces for job in jobs.values() if job.replaces)
    return LedgerCheck(final, results, children)


def start_fetch(api: str, **extra_env: str) -> subprocess.Popen[str]:
    """``ocrflow fetch`` (a sweep) in a process of its own, against the Prefect API ``api``."""
    env = {**os.environ, "PREFECT_API_URL": api, "NO_COLOR": "1", "COLUMNS": "200", **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "ocrflow.cli", "fetch"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


async def leased_jobs() -> int:
    """How many unfinished jobs some run holds a lease on now."""
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        return sum(lease.jobs for lease in await ledger.leases())
    finally:
        await ledger.close()


async def wait_until_leased(child: subprocess.Popen[str], jobs: int) -> None:
    """Wait (60 s at most) until the child's run holds ``jobs`` leases; it must still run."""
    for _ in range(600):  # bounded
        if await leased_jobs() == jobs or child.poll() is not None:
            break
        await asyncio.sleep(0.1)
    assert child.poll() is None, "the fetch ended before the test could step in"
