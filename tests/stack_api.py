"""The Prefect REST API of a stack started by the tests, used as a careful client uses it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ocrflow.cli.stack import Stack
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from ocrflow.settings import OcrflowSettings

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PatientClient(httpx.Client):
    """A busy SQLite server answers 503 at times (it did in CI, right after start-up), so 503
    and 429 are tried again, a bounded number of times, as Prefect's own client does."""

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:
        for attempt in range(10):
            response = super().request(*args, **kwargs)
            if response.status_code not in (429, 503):
                return response
            time.sleep(min(0.5 * 2**attempt, 5.0))
        return response


def stack_settings(stack: Stack, client_secret: str = DEMO_CLIENT_SECRET) -> OcrflowSettings:
    """Settings that reach the stack's emulator and ledger, as its flows do."""
    return OcrflowSettings.model_validate(
        {
            "base_url": stack.emulator_url,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": client_secret,
            "ledger_url": stack.env["OCRFLOW_LEDGER_URL"],
        }
    )


def api(stack: Stack) -> httpx.Client:
    return PatientClient(base_url=stack.api_url, timeout=30)


def trigger(stack: Stack, deployment: str, parameters: dict[str, Any], key: str) -> str:
    """Start a run of ``deployment`` (flow/deployment) through the REST API; its id."""
    with api(stack) as http:
        found = http.get(f"/deployments/name/{deployment}")
        found.raise_for_status()
        created = http.post(
            f"/deployments/{found.json()['id']}/create_flow_run",
            json={"parameters": parameters, "idempotency_key": key},
        )
        created.raise_for_status()
        run_id: str = created.json()["id"]
        return run_id


def wait_for_run(stack: Stack, run_id: str, timeout_s: float = 180) -> dict[str, Any]:
    """The run once it is in a terminal state (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    with api(stack) as http:
        while time.monotonic() < deadline:
            run: dict[str, Any] = http.get(f"/flow_runs/{run_id}").json()
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout_s:.0f} s")


def shard_runs(stack: Stack, after: str) -> list[dict[str, Any]]:
    """The sharded sweeps' shard runs expected to start after ``after`` (ISO time), oldest first."""
    with api(stack) as http:
        found = http.post(
            "/flow_runs/filter",
            json={
                "flow_runs": {
                    "tags": {"all_": ["shard"]},
                    "expected_start_time": {"after_": after},
                },
                "sort": "EXPECTED_START_TIME_ASC",
            },
        )
        found.raise_for_status()
        runs: list[dict[str, Any]] = found.json()
        return runs
