"""Flow tests: one Prefect test harness for the session, the emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from ocrflow.emulator.app import EmulatorState, create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import (
    DEMO_CLIENT_SECRET,
    EmulatorSettings,
    Faults,
    ProcessingTime,
)
from tests.prefect_harness import (
    collect_leftover_sockets,
    flow_env,
    harness,
    ignore_prefects_sockets,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@dataclass
class RunningEmulator:
    """The emulator the flows talk to, with its state for faults and timing."""

    url: str
    state: EmulatorState

    def set_faults(self, **faults: float) -> None:
        self.state.set_faults(Faults.model_validate(faults))

    def set_processing_s(self, seconds: float) -> None:
        self.state.settings.processing = ProcessingTime(seconds=seconds)

    async def until_looked_at(self, job_id: str, times: int = 1, timeout_s: float = 60.0) -> None:
        """Wait (bounded) until clients have asked for the job ``times`` times."""
        deadline = time.monotonic() + timeout_s
        while self.state.jobs.timings([job_id])[0].gets < times:
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody asked for job {job_id} within {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    def release(self, job_id: str) -> None:
        """Let a held job complete now."""
        self.state.jobs.release(job_id)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ignore_prefects_sockets(items, Path(__file__).parent)


@pytest.fixture(scope="package", autouse=True)
def prefect_harness() -> Iterator[None]:
    yield from harness()


@pytest.fixture(autouse=True)
def _no_leftover_sockets() -> Iterator[None]:
    yield
    collect_leftover_sockets()


@pytest.fixture(scope="package")
def running_emulator() -> Iterator[RunningEmulator]:
    settings = EmulatorSettings.model_validate(
        {"processing": {"seconds": 0.0}, "seed": 11, "workers": 2}
    )
    app = create_app(settings)
    with serve_in_thread(app) as url:
        yield RunningEmulator(url, app.state.emulator)


@pytest.fixture
def emulator(running_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    running_emulator.set_faults()
    running_emulator.set_processing_s(0.0)
    yield running_emulator
    running_emulator.set_faults()
    running_emulator.set_processing_s(0.0)


@pytest.fixture
def ocrflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator) -> Path:
    """Point the flows at the emulator, a fresh ledger and fast polling; returns tmp_path."""
    values = flow_env(emulator.url, DEMO_CLIENT_SECRET, tmp_path)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return tmp_path
