"""Fencing: a sweep that stalls past its lease (SIGSTOP) and resumes after another sweep took
its jobs over stores nothing, and stops on its own; the live sweep settles every job once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prefect.settings import get_current_settings

from ocrflow.ledger import JobState, Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import seed, sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEP = "import asyncio; from ocrflow.flows.fetch_results import fetch_results; asyncio.run(fetch_results())"
JOBS = 20


async def claims() -> set[str]:
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        return {lease.claim for lease in await ledger.leases()}
    finally:
        await ledger.close()


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0
) -> None:
    for _ in range(int(timeout_s / 0.1)):  # bounded
        if await condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


async def test_a_stalled_sweep_resumed_after_a_takeover_stores_nothing(
    env: Path, emulator: Emulator, report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRFLOW_CLAIM_LEASE_S", "2")
    monkeypatch.setenv("OCRFLOW_POLL_DEADLINE_S", "120")
    emulator.state.settings.processing.seconds = 10.0  # still running when the sweeps meet
    seeded = await seed(JOBS)
    child_env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    child = subprocess.Popen(  # noqa: ASYNC220 - started once, then watched without blocking
        [sys.executable, "-c", SWEEP], cwd=ROOT, env=child_env, start_new_session=True
    )
    try:
        await wait_for(_leased_by_one, "the first sweep to lease the jobs")
        (stalled,) = await claims()
        os.kill(child.pid, signal.SIGSTOP)  # stalled: no renewal, no request, no write
        await asyncio.sleep(2.5)  # its lease runs out
        # The live sweep looks once, then waits long before its next poll: the stale one,
        # resumed, polls often and sees the jobs done first. Only fencing keeps it from
        # storing them (without it, every job would be settled by the stale sweep).
        monkeypatch.setenv("OCRFLOW_POLL_FIRST_DELAY_S", "15")
        monkeypatch.setenv("OCRFLOW_POLL_MAX_DELAY_S", "15")
        live = asyncio.create_task(sweep(None))
        await wait_for(lambda: _taken_over(stalled), "the live sweep to take the jobs over")
        os.kill(child.pid, signal.SIGCONT)  # it resumes, believing it holds the jobs
        state, _ = await live
        for _ in range(900):  # at most 90 s: it must stop on its own
            if child.poll() is not None:
                break
            await asyncio.sleep(0.1)
        ended_alone = child.poll() is not None
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert ended_alone, "the stale sweep did not stop on its own"
    assert state.is_completed(), state.message
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        jobs = {job.job_id: job for job in await ledger.jobs(seeded)}
        rows = Counter(row.job_id for row in await ledger.results(seeded))
    finally:
        await ledger.close()
    assert {job.state for job in jobs.values()} == {JobState.STORED}
    settlers = Counter(job.settled_by for job in jobs.values())
    assert stalled not in settlers  # the stale sweep stored nothing
    assert len(settlers) == 1  # the live sweep settled every job
    assert set(rows.values()) == {1}  # one result row per job: nothing twice
    report.add(
        case="a sweep stalled (SIGSTOP) past its lease, resumed after a takeover",
        injected=f"{JOBS} jobs, lease 2 s",
        jobs=JOBS,
        outcome=f"{JOBS} stored by the live sweep, 0 by the stale one; it stopped on its own",
        lost=0,
        duplicated=0,
    )


async def _leased_by_one() -> bool:
    return len(await claims()) == 1


async def _taken_over(stalled: str) -> bool:
    held = await claims()
    return bool(held) and stalled not in held
