"""A throwaway local Prefect server for benchmarks: started on 127.0.0.1, stopped after."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ocrflow.emulator.server import free_port
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

# Bigger recorder batches keep a default (SQLite) server from falling behind on task runs.
SERVER_TUNING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "100",
}


@contextmanager
def prefect_server(workdir: Path, startup_s: float = 120.0) -> Iterator[str]:
    """Run ``prefect server start`` with its own home in ``workdir``; yield its API URL."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(workdir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api,  # the UI's pages ask this API (not the default port's)
        **SERVER_TUNING,
    }
    prefect = Path(sys.executable).parent / "prefect"
    server = subprocess.Popen(  # noqa: S603 - our own virtual environment's prefect
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the Prefect server did not start on {api}")
            time.sleep(0.5)
        yield api
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def flow_env(api: str, emulator_url: str, ledger_url: str, results_dir: Path) -> dict[str, str]:
    """The environment of a benchmark's flow process: the server, the emulator, a ledger."""
    return {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "OCRFLOW_BASE_URL": emulator_url,
        "OCRFLOW_CLIENT_ID": DEMO_CLIENT_ID,
        "OCRFLOW_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "OCRFLOW_LEDGER_URL": ledger_url,
        "OCRFLOW_RESULTS_DIR": str(results_dir),
    }


def run_python(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 1800) -> str:
    """Run our own interpreter with ``args`` (a benchmark's side in a process of its own);
    the last line it printed, or its error output as the exception."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and modules
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout.strip().splitlines()[-1]
