"""The ledger's database going away at the end of a sweep, through a proxy of the test's own:
the run ends in a bounded time with its summary whole (each job left says why), its leases
are given back when the ledger returns in time or run out by themselves, and the next sweep
says who holds the jobs instead of "0 jobs"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ocrflow.flows.reports import FetchSummary, Outcome
from tests.pgproxy import FlakyProxy, proxied_database
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import check_ledger, leased_jobs, seed, sweep

JOBS = 20
LEASE_S = 20.0  # longer than the run with its ledger gone (about 10 s)


@pytest.fixture
def ledger_behind_proxy(env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyProxy]:
    """The sweep's ledger on a PostgreSQL database reached through a proxy the test controls."""
    with proxied_database("gone") as (url, proxy):
        monkeypatch.setenv("OCRFLOW_LEDGER_URL", url)
        monkeypatch.setenv("OCRFLOW_CLAIM_LEASE_S", str(LEASE_S))
        yield proxy


async def cut_when_answers_are_on_their_way(
    emulator: Emulator, proxy: FlakyProxy, *, down_s: float | None
) -> None:
    """Take the ledger away once the sweep's first look has asked for its answers (they come
    back a second later: the emulator's latency), so that what is left is the storing and
    the lease's release. ``down_s`` None: it stays away until the test brings it back."""
    asked = emulator.count("requests")
    for _ in range(3000):  # at most 30 s
        if emulator.count("requests") > asked:
            break
        await asyncio.sleep(0.01)
    if down_s is None:
        await asyncio.to_thread(proxy.down)
    else:
        await asyncio.to_thread(proxy.restart, down_s)


async def sweep_with_the_ledger_cut(
    emulator: Emulator, proxy: FlakyProxy, *, down_s: float | None
) -> tuple[list[str], Any, FetchSummary]:
    """Seed JOBS done jobs, then sweep them while the ledger is cut as their answers come."""
    seeded = await seed(JOBS)
    await asyncio.sleep(0.5)  # every job done on the service
    emulator.set_faults(latency_s=1.0)
    cut = asyncio.create_task(cut_when_answers_are_on_their_way(emulator, proxy, down_s=down_s))
    try:
        state, summary = await sweep(None)
    finally:
        await cut
        emulator.set_faults()
    return seeded, state, summary


async def test_a_ledger_gone_at_the_end_leaves_a_whole_summary_and_leases_that_run_out(
    emulator: Emulator,
    ledger_behind_proxy: FlakyProxy,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
) -> None:
    proxy = ledger_behind_proxy
    monkeypatch.setenv("OCRFLOW_LEDGER_RETRY_S", "3")
    started = time.monotonic()
    seeded, state, summary = await sweep_with_the_ledger_cut(emulator, proxy, down_s=None)
    took_s = time.monotonic() - started
    # The run ends by itself, soon, and its summary names every job and why it was left.
    # 3 s for the store, as much to keep a job's error, as much to give the leases back
    assert took_s < 30, f"the sweep took {took_s:.0f} s with the ledger gone"
    assert not state.is_completed()
    assert sorted(r.job_id for r in summary.reports) == sorted(seeded)
    assert {r.outcome for r in summary.reports} == {Outcome.ERROR}, summary.headline()
    assert all("ledger" in r.message.lower() for r in summary.reports), summary.reports[0]
    assert f"({JOBS} error)" in summary.headline(), summary.headline()

    proxy.up()
    # Its leases could not be given back: the next sweep says who holds the jobs, until when.
    state, summary = await sweep(None)
    assert summary.reports == []
    assert f"{JOBS} unfinished job(s) leased by 1 other run(s) until" in summary.headline()
    for _ in range(int(LEASE_S * 10) + 50):  # bounded: the lease runs out within LEASE_S
        if await leased_jobs() == 0:
            break
        await asyncio.sleep(0.1)
    state, summary = await sweep(None)
    assert state.is_completed(), summary.headline()
    assert {r.outcome for r in summary.reports} == {Outcome.STORED}
    check = await check_ledger(seeded)
    assert check.lost == []
    assert check.duplicated == []
    report.add(
        case="the ledger's database gone at the end of a sweep (for good)",
        injected=f"{JOBS} done jobs, connections cut while their answers were on the way",
        jobs=JOBS,
        outcome=f"ended in {took_s:.0f} s, summary whole ({JOBS} left, reason each); next "
        "sweep named the holder; stored all once the lease ran out",
        lost=len(check.lost),
        duplicated=len(check.duplicated),
    )


async def test_a_ledger_back_before_the_end_stores_everything_and_gives_the_leases_back(
    emulator: Emulator,
    ledger_behind_proxy: FlakyProxy,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
) -> None:
    monkeypatch.setenv("OCRFLOW_LEDGER_RETRY_S", "30")
    seeded, state, summary = await sweep_with_the_ledger_cut(
        emulator, ledger_behind_proxy, down_s=5.0
    )
    assert state.is_completed(), summary.headline()
    assert {r.outcome for r in summary.reports} == {Outcome.STORED}, summary.headline()
    assert await leased_jobs() == 0  # given back: nothing waits for a lease to run out
    check = await check_ledger(seeded)
    assert check.lost == []
    assert check.duplicated == []
    report.add(
        case="the ledger's database away 5 s at the end of a sweep",
        injected=f"{JOBS} done jobs, connections cut while their answers were on the way",
        jobs=JOBS,
        outcome=f"{len(summary.reports)} stored in the same run; leases given back",
        lost=len(check.lost),
        duplicated=len(check.duplicated),
    )
