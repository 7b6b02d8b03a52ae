"""The stack stopped at a bad moment and started again: a sweep run that a worker was being
handed (Pending, holding the sweep's only concurrency slot) is marked Crashed, on `stop` or,
after a hard stop, on the next `serve`; the schedule set on the server survives the restart
and the next scheduled sweep runs within one interval; a second `serve` on a live stack is
refused; `stop` leaves nothing running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ocrflow.cli.errors import UserError
from ocrflow.cli.orphans import pid_alive
from ocrflow.cli.stack import PROJECT_DIR, Stack, start_stack, stop_stack
from ocrflow.cli.stackfile import port_free
from ocrflow.emulator.server import free_port
from ocrflow.leases import claim_for_run, run_of_claim
from ocrflow.ledger import JobState, Ledger
from tests.ledger.test_ledger import REGIONS
from tests.stack_api import api

INTERVAL_S = 20
SAMPLE = PROJECT_DIR / "samples" / "id-card.regions.json"
ENV = {
    "OCRFLOW_EMULATOR_PROCESSING__SECONDS": "0.2",
    "PREFECT_WORKER_QUERY_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The stack's folder where a command run from ``tmp_path`` looks for it (var/stack)."""
    folder = tmp_path / "var" / "stack"
    yield folder
    stop_stack(home=folder)  # whatever the test left running


def ocrflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command as a user types it: no setting of ours, run from the stack's project."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OCRFLOW_", "PREFECT_API_URL"))
    }
    return subprocess.run(
        [sys.executable, "-m", "ocrflow.cli", *args],
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def start(home: Path, port: int) -> Stack:
    return start_stack(home, server_port=port, emulator_port=free_port(), extra_env=ENV)


def kill_hard(stack: Stack, *names: str) -> None:
    """SIGKILL, as a power cut would: nothing gets to clean up."""
    for name in names:
        os.killpg(stack.pids[name], signal.SIGKILL)
        stack.processes[name].wait(timeout=30)


def sweep_handed_to_a_worker(stack: Stack) -> str:
    """A sweep run moved to Pending, as a worker does when it takes one (the run then holds
    the deployment's concurrency slot); the worker is gone before the run starts."""
    with api(stack) as http:
        deployment = http.get("/deployments/name/fetch-results/sweep").json()
        created = http.post(f"/deployments/{deployment['id']}/create_flow_run", json={})
        created.raise_for_status()
        run_id: str = created.json()["id"]
        pending = http.post(
            f"/flow_runs/{run_id}/set_state", json={"state": {"type": "PENDING"}}
        ).json()
        assert pending["status"] == "ACCEPT", pending
    return run_id


LEASED_JOB = "00000000-0000-4000-8000-0000000b0001"


async def lease_a_job_to(ledger_url: str, run_id: str) -> None:
    """A job in the stack's ledger leased by ``run_id`` for an hour, as its sweep would."""
    ledger = await Ledger.open(ledger_url)
    try:
        await ledger.record_job(
            LEASED_JOB, image_sha256=None, source=None, regions=REGIONS, settings={}
        )
        held, _ = await ledger.claim_jobs(claim_for_run(run_id), [LEASED_JOB], lease_s=3600)
        assert held == [LEASED_JOB]
    finally:
        await ledger.close()


async def leases_held_by(ledger_url: str, run_id: str) -> int:
    """Jobs ``run_id`` still leases; the test's job is then ended, so no sweep looks at it."""
    ledger = await Ledger.open(ledger_url)
    try:
        held = sum(
            lease.jobs for lease in await ledger.leases() if run_of_claim(lease.claim) == run_id
        )
        await ledger.finish(LEASED_JOB, JobState.FAILED, error="a test's job, never submitted")
        return held
    finally:
        await ledger.close()


def run_state(stack: Stack, run_id: str) -> str:
    with api(stack) as http:
        state: str = http.get(f"/flow_runs/{run_id}").json()["state_type"]
        return state


def sweep_schedules(stack: Stack) -> list[dict[str, Any]]:
    with api(stack) as http:
        deployment = http.get("/deployments/name/fetch-results/sweep").json()
        found: list[dict[str, Any]] = deployment["schedules"]
        return found


def set_interval(stack: Stack, seconds: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "ocrflow.cli", "sweep-interval", str(seconds)],
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def completed_sweeps_after(stack: Stack, after: str, timeout_s: float) -> list[Any]:
    """Scheduled sweep runs that completed and were due after ``after`` (bounded wait)."""
    query = {
        "flow_runs": {
            "state": {"type": {"any_": ["COMPLETED"]}},
            "expected_start_time": {"after_": after},
        },
        "deployments": {"name": {"any_": ["sweep"]}},
    }
    deadline = time.monotonic() + timeout_s
    with api(stack) as http:
        while time.monotonic() < deadline:
            done: list[Any] = http.post("/flow_runs/filter", json=query).json()
            if [run for run in done if run["auto_scheduled"]]:
                return done
            time.sleep(2)
    return []


def test_a_stack_stopped_mid_hand_over_restarts_with_its_sweep_unblocked(home: Path) -> None:
    port = free_port()
    stack = start(home, port)
    set_interval(stack, INTERVAL_S)

    # A second `serve` on the live stack is refused, and leaves it running.
    with pytest.raises(UserError, match="running already"):
        start(home, port)
    assert all(pid_alive(pid) for pid in stack.pids.values())

    # `stop` while a run is being handed over: the run is marked Crashed, its slot freed,
    # and the jobs it had leased given back at once (not when the lease runs out).
    kill_hard(stack, "worker")
    handed = sweep_handed_to_a_worker(stack)
    ledger_url = stack.env["OCRFLOW_LEDGER_URL"]
    asyncio.run(lease_a_job_to(ledger_url, handed))
    stop_stack(stack)
    assert not any(pid_alive(pid) for pid in stack.pids.values())
    assert port_free(port)
    assert asyncio.run(leases_held_by(ledger_url, handed)) == 0

    stack = start(home, port)
    assert run_state(stack, handed) == "CRASHED"
    # A hard stop (SIGKILL) mid-hand-over: the next `serve` marks the run Crashed.
    kill_hard(stack, "worker")
    handed = sweep_handed_to_a_worker(stack)
    kill_hard(stack, "emulator", "server")
    restarted_at = datetime.now(UTC).isoformat()
    stack = start(home, port)
    assert run_state(stack, handed) == "CRASHED"
    assert handed_names(stack, handed) in stack.crashed
    # The interval set on the server survived both restarts (prefect.yaml says 600).
    schedules = sweep_schedules(stack)
    assert [(s["schedule"]["interval"], s["active"]) for s in schedules] == [
        (float(INTERVAL_S), True)
    ]
    # Nothing holds the slot: the next scheduled sweep runs within one interval (and start-up).
    assert completed_sweeps_after(stack, restarted_at, timeout_s=INTERVAL_S + 60)

    # One configuration: a job submitted from a terminal (no setting given) goes through the
    # stack's server into its ledger, its scheduled sweep stores it, `results` shows it.
    submitted = ocrflow("submit", str(SAMPLE), cwd=home.parents[1])
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    shown = ocrflow("results", job_id, "--format", "json", cwd=home.parents[1])
    for _ in range(INTERVAL_S + 60):  # bounded: one interval and a sweep
        if shown.returncode == 0:
            break
        time.sleep(1)
        shown = ocrflow("results", job_id, "--format", "json", cwd=home.parents[1])
    assert shown.returncode == 0, shown.stderr
    texts = [row["text"] for row in json.loads(shown.stdout)]
    assert texts == [region["expected"] for region in json.loads(SAMPLE.read_text())["regions"]]
    with api(stack) as http:  # the submission ran on the stack's server, labelled as ours
        runs = http.post("/flow_runs/filter", json={"flow_runs": {"name": {}}}).json()
    assert any(run["labels"].get("ocrflow.process") for run in runs)
    stop_stack(stack)
    assert not any(pid_alive(pid) for pid in json.loads((home / "pids.json").read_text()).values())
    assert port_free(port)


def handed_names(stack: Stack, run_id: str) -> str:
    with api(stack) as http:
        name: str = http.get(f"/flow_runs/{run_id}").json()["name"]
        return name
