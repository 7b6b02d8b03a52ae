"""Ctrl-C and SIGTERM on `ocrflow fetch`: one line saying what was done and what is left, the
leases given back, the shell's exit code (130, 143), and no crash storm in the output."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from prefect.settings import get_current_settings

from ocrflow.ledger import JobState, Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import leased_jobs, seed, start_fetch, wait_until_leased

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_an_interrupted_fetch_says_what_is_left_and_gives_its_leases_back(
    env: Path, emulator: Emulator, report: Report, sent: signal.Signals, code: int
) -> None:
    emulator.state.settings.processing.seconds = 30.0  # still running when the signal comes
    seeded = await seed(20)
    child = start_fetch(str(get_current_settings().api.url))
    try:
        await wait_until_leased(child, len(seeded))
        await asyncio.sleep(1.0)  # its polls are under way
        os.kill(child.pid, sent)
        out, err = await asyncio.to_thread(child.communicate, timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # no crash storm, no traceback
    assert f"interrupted by {sent.name}" in lines[0]
    assert "the others stay unfinished, their leases given back" in lines[0]
    assert await leased_jobs() == 0  # given back: the next run can take them at once
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        states = {job.state for job in await ledger.jobs(seeded)}
    finally:
        await ledger.close()
    assert states == {JobState.SUBMITTED}  # left for the next run, none lost
    report.add(
        case=f"`ocrflow fetch` interrupted with {sent.name}",
        injected="20 jobs still processing",
        jobs=len(seeded),
        outcome=f"exit {code}, one line, leases given back, 20 unfinished for the next run",
        lost=0,
        duplicated=0,
    )
    del out
