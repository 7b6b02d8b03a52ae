"""What the test folders that run flows share: one Prefect test harness per folder,
Prefect's leftover sockets kept from being blamed on other folders, the flows' settings."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from ocrflow.emulator.settings import DEMO_CLIENT_ID


def ignore_prefects_sockets(items: list[pytest.Item], folder: Path) -> None:
    """Prefect's own API client leaves a socket to the harness server for the garbage
    collector (seen with 3.9.1); that warning is Prefect's, so it is ignored in ``folder``
    only. Unit and emulator tests still fail on any unclosed socket of ours."""
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"))
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:Exception ignored in. <socket:pytest.PytestUnraisableExceptionWarning"
                )
            )


def collect_leftover_sockets() -> None:
    """Finalise now, with the warning ignored, what Prefect's client left to the collector;
    otherwise a later test outside the folder is blamed for it when the collector runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def flow_env(emulator_url: str, client_secret: str, tmp_path: Path) -> dict[str, str]:
    """Settings that point the flows at an emulator, a fresh ledger and quick polling and
    retries (tenths of a second, so that a test waits little)."""
    return {
        "OCRFLOW_BASE_URL": emulator_url,
        "OCRFLOW_CLIENT_ID": DEMO_CLIENT_ID,
        "OCRFLOW_CLIENT_SECRET": client_secret,
        "OCRFLOW_LEDGER_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "OCRFLOW_RESULTS_DIR": str(tmp_path / "results"),
        "OCRFLOW_POLL_FIRST_DELAY_S": "0.1",
        "OCRFLOW_POLL_MAX_DELAY_S": "0.3",
        "OCRFLOW_POLL_DEADLINE_S": "30",
        "OCRFLOW_BACKOFF_BASE_S": "0.01",
        "OCRFLOW_BACKOFF_CAP_S": "0.05",
        "OCRFLOW_REFETCH_BASE_S": "0.05",
        "OCRFLOW_REFETCH_CAP_S": "0.2",
    }


def harness() -> Iterator[None]:
    """A Prefect test harness (a temporary server), for a package-scoped fixture."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
        collect_leftover_sockets()
    collect_leftover_sockets()
