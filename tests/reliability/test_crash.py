"""Crash recovery: a sweep killed with SIGKILL half-way, then run again, loses and repeats
nothing; a resubmission that was in flight at a crash is never sent a second time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prefect.settings import get_current_settings

from ocrflow.flows.reports import Outcome
from ocrflow.ledger import JobState, Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import check_ledger, seed, sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEP = "import asyncio; from ocrflow.flows.fetch_results import fetch_results; asyncio.run(fetch_results())"


async def stored_count() -> int:
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        return sum(job.state is JobState.STORED for job in await ledger.jobs())
    finally:
        await ledger.close()


async def test_a_sweep_killed_half_way_loses_and_repeats_nothing(
    env: Path, emulator: Emulator, report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCRFLOW_CLAIM_LEASE_S", "2")  # the dead sweep's lease, soon expired
    emulator.state.settings.processing.kind = "lognormal"
    emulator.state.settings.processing.seconds = 2.0
    emulator.state.settings.processing.sigma = 0.6
    emulator.set_faults(rate_not_exist=0.2)  # some jobs vanish: resubmissions are under way
    seeded = await seed(100)
    emulator.set_faults()
    posts_seeded = emulator.count("submit_RecognizeRegions")
    child_env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    child = subprocess.Popen(  # noqa: ASYNC220 - started once, then watched without blocking
        [sys.executable, "-c", SWEEP], cwd=ROOT, env=child_env, start_new_session=True
    )
    try:
        stored_at_kill = 0
        for _ in range(600):  # at most about 60 s: kill once a third is stored
            stored_at_kill = await stored_count()
            if stored_at_kill >= 30 or child.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert child.poll() is None, "the sweep ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert 30 <= stored_at_kill < 100
    killed = await check_ledger(seeded)
    await asyncio.sleep(2.5)  # the dead sweep's lease on its jobs expires

    state, summary = await sweep(None)  # the next sweep takes over every unfinished job
    after = await check_ledger(seeded)
    posts = emulator.count("submit_RecognizeRegions") - posts_seeded
    replacements = sum(after.children.values())
    interrupted = [
        job
        for job in after.final.values()
        if job.state is JobState.FAILED and "never recorded" in (job.last_error or "")
    ]
    assert after.lost == []
    assert after.duplicated == []  # one result row per region, at most one replacement a job
    assert set(after.states()) <= {"stored", "failed"}
    assert all(
        job.state is JobState.STORED for job in after.final.values() if job not in interrupted
    )
    # Every image sent again is recorded, but for those in flight at the kill (sent once).
    assert replacements <= posts <= replacements + len(interrupted)
    assert all(r.outcome in (Outcome.STORED, Outcome.FAILED) for r in summary.reports)
    assert state.is_completed() or interrupted
    report.add(
        case="SIGKILL half-way through a sweep, then a new sweep",
        injected=f"kill at {stored_at_kill} of 100 stored",
        jobs=100,
        outcome=(
            f"{after.states()['stored']} stored, {replacements} resubmitted once, "
            f"{len(interrupted)} resubmissions in flight at the kill not sent again; "
            f"{sum(killed.results.values())} result rows before the kill kept"
        ),
        lost=len(after.lost),
        duplicated=len(after.duplicated),
    )


async def test_a_resubmission_in_flight_at_a_crash_is_not_sent_again(
    env: Path, emulator: Emulator, report: Report
) -> None:
    emulator.set_faults(rate_not_exist=1.0)  # every job vanishes: each would be resubmitted
    crashed, *others = await seed(3)
    emulator.set_faults()
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        assert await ledger.begin_resubmission(crashed)  # a run marked it, then died
    finally:
        await ledger.close()
    posts_before = emulator.count("submit_RecognizeRegions")

    state, summary = await sweep([crashed, *others])

    posts = emulator.count("submit_RecognizeRegions") - posts_before
    by_id = {r.job_id: r for r in summary.reports}
    assert by_id[crashed].outcome is Outcome.FAILED
    assert "never recorded" in by_id[crashed].message
    assert "not sent again" in by_id[crashed].message
    assert [by_id[j].outcome for j in others] == [Outcome.STORED, Outcome.STORED]
    assert posts == 2  # the two others, once each; nothing for the crashed one
    check = await check_ledger([crashed, *others])
    assert check.children[crashed] == 0
    assert check.states() == Counter({"stored": 2, "failed": 1})
    assert state.is_failed()
    report.add(
        case="a resubmission in flight at a crash",
        injected="1 job marked as being resubmitted, never recorded",
        jobs=3,
        outcome="1 failed with its reason (not sent again), 2 resubmitted once and stored",
        lost=len(check.lost),
        duplicated=len(check.duplicated),
    )


async def test_concurrent_resubmissions_of_one_job_send_it_once(env: Path) -> None:
    seeded = await seed(1)
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        claims = await asyncio.gather(*(ledger.begin_resubmission(seeded[0]) for _ in range(5)))
    finally:
        await ledger.close()
    assert sorted(claims) == [False, False, False, False, True]  # only one run may send
