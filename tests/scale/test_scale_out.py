"""Scale-out on a real stack: the Prefect server and the ledger on the local PostgreSQL, the
server's messaging in Redis, two shard workers, the sharded sweep triggered through the API.

Two workers share 1,000 jobs and the emulator sees each asked for exactly once; a worker killed
mid-run (SIGKILL, with the flow run it was running) leaves leases that expire, and the other
worker finishes its jobs. Every process binds 127.0.0.1 and is stopped at the end; the two
databases are made for this module and dropped after it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocrflow.cli.stack import Stack
from ocrflow.ledger import JobState, Lease, Ledger
from tests.reliability.helpers import seed
from tests.services import check_reachable, scaled_stack
from tests.stack_api import shard_runs, stack_settings, trigger, wait_for_run

LEASE_S = 10  # short, so that a dead worker's jobs are taken over within the test


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    asyncio.run(check_reachable())
    env = {
        "OCRFLOW_CLAIM_LEASE_S": str(LEASE_S),
        "OCRFLOW_POLL_FIRST_DELAY_S": "0.5",
        "OCRFLOW_POLL_MAX_DELAY_S": "2",
    }
    with scaled_stack(tmp_path_factory.mktemp("scaled"), "scale", 9, env) as running:
        yield running


def _seed(stack: Stack, count: int, processing_s: float) -> list[str]:
    """``count`` jobs on the stack's emulator, recorded in its ledger, taking ``processing_s``."""
    with httpx.Client(base_url=str(stack.emulator_url), timeout=10) as emulator:
        emulator.put("/_emulator/processing", json={"seconds": processing_s}).raise_for_status()
        try:
            return asyncio.run(seed(count, stack_settings(stack)))
        finally:
            emulator.put("/_emulator/processing", json={"seconds": 0}).raise_for_status()


async def _ledger_view(
    stack: Stack, job_ids: list[str]
) -> tuple[Counter[str], Counter[str], list[Lease]]:
    """States of the jobs, result rows per job, and the leases held now."""
    ledger = await Ledger.open(stack.env["OCRFLOW_LEDGER_URL"])
    try:
        states = Counter(job.state.value for job in await ledger.jobs(job_ids))
        rows = Counter(row.job_id for row in await ledger.results(job_ids))
        return states, rows, await ledger.leases()
    finally:
        await ledger.close()


def _worker_of(stack: Stack, run_id: str) -> str | None:
    """Which worker ran the flow run: the one whose log has the run's own lease line (a worker
    also logs runs it went for and was refused, when another worker took them first)."""
    for log in sorted(stack.logs.glob("*worker*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if "leased" in line and f" as {run_id}@" in line:
                return log.stem
    return None


def _utc_iso() -> str:
    """A moment ago, in UTC: the runs started from now on come after it (one clock here)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


def test_two_workers_share_1000_jobs_each_fetched_exactly_once(stack: Stack) -> None:
    job_ids = _seed(stack, 1000, processing_s=0)
    since = _utc_iso()
    parent = wait_for_run(
        stack, trigger(stack, "sharded-sweep/sharded-sweep", {}, key=f"share-{since}"), 300
    )
    assert parent["state_type"] == "COMPLETED", parent["state"]
    assert "2 completed, 0 taken over, 0 failed" in parent["state"]["message"]

    shards = shard_runs(stack, since)
    assert [run["state_type"] for run in shards] == ["COMPLETED", "COMPLETED"]
    workers = {_worker_of(stack, run["id"]) for run in shards}
    assert workers == {"shard-worker-1", "shard-worker-2"}  # each worker ran one shard

    stats = httpx.get(f"{stack.emulator_url}/_emulator/stats", timeout=10).json()["jobs"]
    assert stats["jobs_by_gets"] == {"1": 1000}  # every job asked for once, by one shard only
    states, rows, leases = asyncio.run(_ledger_view(stack, job_ids))
    assert states == Counter({JobState.STORED.value: 1000})
    assert set(rows.values()) == {1}
    assert len(rows) == 1000
    assert leases == []  # every shard gave its lease back


def test_a_killed_worker_s_jobs_are_finished_by_the_other_once_its_lease_expires(
    stack: Stack,
) -> None:
    # Jobs that take 45 s: a shard run starts some 15 s after its trigger (worker poll, new
    # process), so both are still polling them when one worker is killed.
    job_ids = _seed(stack, 200, processing_s=45)
    since = _utc_iso()
    parent_id = trigger(stack, "sharded-sweep/sharded-sweep", {}, key=f"kill-{since}")

    deadline = time.monotonic() + 120
    live: list[Lease] = []
    while time.monotonic() < deadline and len(live) < 2:
        time.sleep(0.5)
        live = [
            lease for lease in asyncio.run(_ledger_view(stack, job_ids))[2] if not lease.expired()
        ]
    assert len(live) == 2, f"two shards never held leases at once: {live}"
    shards = shard_runs(stack, since)
    victim_run = shards[0]
    victim = _worker_of(stack, victim_run["id"])
    assert victim is not None
    assert victim.startswith("shard-worker")
    stack.pids.pop(victim)
    _kill_with_descendants(stack.processes.pop(victim))
    killed_at = time.monotonic()

    parent = wait_for_run(stack, parent_id, 240)
    assert parent["state_type"] == "COMPLETED", parent["state"]
    assert "1 taken over, 0 failed" in parent["state"]["message"]
    by_name = {run["name"]: run for run in shard_runs(stack, since)}
    crashed = by_name[victim_run["name"]]
    assert crashed["state_type"] == "CRASHED"
    assert "expired" in crashed["state"]["message"]
    takeover = by_name[f"{victim_run['name']}-takeover"]
    assert takeover["state_type"] == "COMPLETED", takeover["state"]
    survivor = _worker_of(stack, takeover["id"])
    assert survivor is not None
    assert survivor != victim
    assert time.monotonic() - killed_at >= LEASE_S - 1  # taken over after the lease ran out

    states, rows, leases = asyncio.run(_ledger_view(stack, job_ids))
    assert states == Counter({JobState.STORED.value: 200})  # none lost
    assert set(rows.values()) == {1}
    assert len(rows) == 200
    assert leases == []


def _kill_with_descendants(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and everything it started, as a machine that dies would."""
    for pid in [worker.pid, *_descendants(worker.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    worker.wait(timeout=30)  # reaped; its flow run's process was not ours to reap


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
