"""Reliability tests: the fetch flow against a fresh simulation-mode emulator per test, under a
Prefect test harness; every test's figures go into one report (``var/reliability/``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from ocrflow.emulator.app import EmulatorState, create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import EmulatorSettings, Faults
from tests.prefect_harness import (
    collect_leftover_sockets,
    flow_env,
    harness,
    ignore_prefects_sockets,
)

# A secret nobody else uses, so that finding it anywhere is a leak of ours (see test_secrets).
CLIENT_SECRET = "ocrflow-test-secret-Vq7XkP2mZr9T"
REPORT_DIR = Path(__file__).resolve().parents[2] / "var" / "reliability"


@dataclass
class Emulator:
    """A simulation-mode emulator of one test, with its state for faults and counts."""

    url: str
    state: EmulatorState

    def set_faults(self, **faults: Any) -> None:
        self.state.set_faults(Faults.model_validate(faults))

    def count(self, name: str) -> int:
        return self.state.counts[name]


@dataclass
class Report:
    """Rows of the reliability report: one per case, written when the session ends."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        self.rows.append(row)


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
def report() -> Iterator[Report]:
    collected = Report()
    yield collected
    if collected.rows:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        (REPORT_DIR / "matrix.json").write_text(json.dumps(collected.rows, indent=2) + "\n")
        header = (
            "| case | injected | jobs | outcome | jobs lost | duplicates |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
        )
        lines = [
            f"| {r['case']} | {r['injected']} | {r['jobs']} | {r['outcome']} | {r['lost']} "
            f"| {r['duplicated']} |"
            for r in collected.rows
        ]
        (REPORT_DIR / "matrix.md").write_text(header + "\n".join(lines) + "\n")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    settings = EmulatorSettings.model_validate(
        {
            "simulate": True,
            "processing": {"seconds": 0.2},
            "seed": 7,
            "workers": 4,
            "client_secret": CLIENT_SECRET,
            "token_lifetime_s": 3600,
        }
    )
    app = create_app(settings)
    with serve_in_thread(app) as url:
        yield Emulator(url, app.state.emulator)
    app.state.emulator.jobs.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Path:
    """Point the flows at the emulator, a fresh ledger and quick retries; returns tmp_path."""
    values = {**flow_env(emulator.url, CLIENT_SECRET, tmp_path), "OCRFLOW_MAX_ATTEMPTS": "6"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return tmp_path
