"""What the test folders that run flows share: one Prefect test harness per folder, and
Prefect's leftover sockets kept from being blamed on the tests of other folders."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness


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


def harness() -> Iterator[None]:
    """A Prefect test harness (a temporary server), for a package-scoped fixture."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
        collect_leftover_sockets()
    collect_leftover_sockets()
