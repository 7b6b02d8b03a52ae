"""The Prefect API gone for good mid-run: `ocrflow fetch` settles its jobs and ends on its own
within a bound, with one line that says so, instead of draining its queues for hours."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulator.server import free_port
from ocrflow.ledger import Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import seed, start_fetch, wait_until_leased

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 90.0  # jobs of 6 s, then the run's calls to a dead API, then a 5 s drain


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Prefect server of the test's own (the harness's must not die), on 127.0.0.1."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).parent / "prefect"
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PREFECT_HOME": str(tmp_path / "server")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(240):  # at most 2 minutes to start
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                pytest.fail("the Prefect server did not start")
            time.sleep(0.5)
        yield api, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


async def test_a_fetch_whose_prefect_api_dies_ends_on_its_own_within_a_bound(
    env: Path,
    emulator: Emulator,
    report: Report,
    prefect_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    api, server = prefect_server
    emulator.state.settings.processing.seconds = 6.0  # still running when the API dies
    seeded = await seed(20)
    child = start_fetch(api, OCRFLOW_EXIT_WAIT_S="5")
    try:
        await wait_until_leased(child, len(seeded))
        os.killpg(server.pid, signal.SIGKILL)  # gone for good
        killed_at = time.monotonic()
        _, err = await asyncio.to_thread(child.communicate, timeout=BOUND_S + 60)
        took_s = time.monotonic() - killed_at
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert took_s < BOUND_S, f"the command took {took_s:.0f} s after its API died"
    assert child.returncode == 1
    said = [line for line in err.splitlines() if line.startswith("error:")]
    assert said, err
    assert "the Prefect API" in said[0]
    assert "Traceback" not in err
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        states = Counter(job.state.value for job in await ledger.jobs(seeded))
    finally:
        await ledger.close()
    assert states == Counter({"stored": len(seeded)})  # the jobs were settled all the same
    report.add(
        case="the Prefect API killed for good mid-run",
        injected="20 jobs of 6 s, the server killed once they were leased",
        jobs=len(seeded),
        outcome=f"20 stored; the command ended on its own {took_s:.0f} s after the kill, "
        f"exit 1, {len(said)} error line(s)",
        lost=0,
        duplicated=0,
    )
