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

from ocrflow.emulator.server import free_port
from ocrflow.ledger import Ledger
from ocrflow.settings import OcrflowSettings
from tests.reliability.conftest import Emulator, Report
from tests.reliability.helpers import seed, start_fetch, wait_until_leased

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 90.0  # jobs of 6 s, then the run's calls to a dead API, then a 5 s drain


class OwnPrefectServer:
    """A Prefect server of the test's own (the harness's must not die) on 127.0.0.1, that the
    test can kill and start again on the same port and database."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        prefect = Path(sys.executable).parent / "prefect"
        self.process = process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, "PREFECT_HOME": str(self.home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(240):  # at most 2 minutes to start
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail("the Prefect server did not start")
            time.sleep(0.5)
        pytest.fail("the Prefect server did not answer within 2 minutes")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def run_states(self) -> dict[str, str]:
        """Every flow run's name and state type."""
        runs = httpx.post(f"{self.api}/flow_runs/filter", json={}, timeout=10).json()
        return {run["name"]: run["state_type"] for run in runs}


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[OwnPrefectServer]:
    server = OwnPrefectServer(tmp_path / "server")
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_a_fetch_whose_prefect_api_dies_ends_on_its_own_within_a_bound(
    env: Path,
    emulator: Emulator,
    report: Report,
    prefect_server: OwnPrefectServer,
) -> None:
    server = prefect_server
    emulator.state.settings.processing.seconds = 6.0  # still running when the API dies
    seeded = await seed(20)
    child = start_fetch(server.api, OCRFLOW_EXIT_WAIT_S="5")
    try:
        await wait_until_leased(child, len(seeded))
        server.kill()  # gone for good
        killed_at = time.monotonic()
        _, err = await asyncio.to_thread(child.communicate, timeout=BOUND_S + 60)
        took_s = time.monotonic() - killed_at
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert took_s < BOUND_S, f"the command took {took_s:.0f} s after its API died"
    assert child.returncode == 1
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 1, err  # one line, that says what happened and what to do
    assert said[0].startswith("error: the Prefect API"), err
    ledger = await Ledger.open(OcrflowSettings().ledger_url)
    try:
        states = Counter(job.state.value for job in await ledger.jobs(seeded))
    finally:
        await ledger.close()
    assert states == Counter({"stored": len(seeded)})  # the jobs were settled all the same
    # The server back: the run it never heard the end of shows Running until the next command
    # on this machine finds its process gone and marks it Crashed.
    await asyncio.to_thread(server.start)
    assert list(server.run_states().values()) == ["RUNNING"]
    again = start_fetch(server.api)
    _, err = await asyncio.to_thread(again.communicate, timeout=120)
    assert again.returncode == 0, err
    assert sorted(server.run_states().values()) == ["COMPLETED", "CRASHED"]
    report.add(
        case="the Prefect API killed for good mid-run",
        injected="20 jobs of 6 s, the server killed once they were leased",
        jobs=len(seeded),
        outcome=f"20 stored; the command ended on its own {took_s:.0f} s after the kill, "
        f"exit 1, one line; its run marked Crashed by the next command",
        lost=0,
        duplicated=0,
    )
