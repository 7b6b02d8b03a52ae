"""End to end on a real `prefect server start`: deploy from prefect.yaml, a worker, REST
triggers with idempotency, a schedule firing by itself, a webhook alert, and no secret leaked.

Every process (server, emulator, worker) is started here on 127.0.0.1 and stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from ocrflow.cli.stack import PROJECT_DIR, Stack, start_stack, stop_stack
from ocrflow.client import OcrClient
from ocrflow.emulator.server import free_port
from ocrflow.jobspec import load_regions_file
from ocrflow.ledger import JobState, Ledger
from ocrflow.models import to_wire
from tests.stack_api import api, stack_settings, trigger, wait_for_run

SAMPLE = PROJECT_DIR / "samples" / "id-card.regions.json"


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(self.rfile.read(length).decode(errors="replace"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alert"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def secret() -> str:
    return f"e2e-secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, secret: str
) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    running = start_stack(
        home,
        server_port=free_port(),
        sweep_interval_s=3600,
        webhook_url=receiver.url,
        extra_env={
            "OCRFLOW_EMULATOR_CLIENT_SECRET": secret,
            "OCRFLOW_EMULATOR_PROCESSING__SECONDS": "0.5",
            "OCRFLOW_POLL_FIRST_DELAY_S": "0.3",
            "OCRFLOW_POLL_MAX_DELAY_S": "1",
            "OCRFLOW_POLL_DEADLINE_S": "120",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
            "OCRFLOW_ALERT_UNREACHABLE_S": "4",
        },
    )
    try:
        yield running
    finally:
        stop_stack(running)


async def submit_recorded_job(stack: Stack, secret: str) -> str:
    """A job sent to the stack's emulator and recorded in the stack's ledger."""
    spec = load_regions_file(SAMPLE)
    settings = stack_settings(stack, secret)
    async with OcrClient(settings) as client:
        job_id = await client.submit_regions(spec.image, spec.wire_regions(), spec.settings)
    ledger = await Ledger.open(settings.ledger_url)
    try:
        digest = await ledger.save_image(spec.image.read_bytes())
        await ledger.record_job(
            job_id,
            image_sha256=digest,
            source=str(spec.image),
            regions=[r.stored() for r in spec.regions],
            settings=to_wire(spec.settings.model_copy(update={"regions": None})),
        )
    finally:
        await ledger.close()
    return job_id


async def read_ledger(stack: Stack, job_id: str) -> tuple[Any, list[Any]]:
    ledger = await Ledger.open(stack.env["OCRFLOW_LEDGER_URL"])
    try:
        return await ledger.get_job(job_id), await ledger.results([job_id])
    finally:
        await ledger.close()


def test_rest_trigger_fetches_and_stores_once_per_idempotency_key(
    stack: Stack, secret: str
) -> None:
    job_id = asyncio.run(submit_recorded_job(stack, secret))
    first = trigger(stack, "fetch-results/fetch", {"job_ids": [job_id]}, key=f"fetch-{job_id}")
    again = trigger(stack, "fetch-results/fetch", {"job_ids": [job_id]}, key=f"fetch-{job_id}")
    assert again == first  # the same key does not start a second run
    run = wait_for_run(stack, first)
    assert run["state_type"] == "COMPLETED", run["state"]
    job, results = asyncio.run(read_ledger(stack, job_id))
    assert job is not None
    assert job.state is JobState.STORED
    assert [r.text for r in results] == [
        r["expected"] for r in json.loads(SAMPLE.read_text())["regions"]
    ]


def test_a_failed_run_sends_a_webhook_alert_within_60_s(
    stack: Stack, secret: str, receiver: Receiver
) -> None:
    httpx.put(
        f"{stack.emulator_url}/_emulator/faults", json={"rate_job_error": 1.0}
    ).raise_for_status()
    try:
        job_id = asyncio.run(submit_recorded_job(stack, secret))
        run_id = trigger(
            stack,
            "fetch-results/fetch",
            {"job_ids": [job_id], "max_resubmissions": 1},
            key=f"failing-{job_id}",
        )
        run = wait_for_run(stack, run_id)
    finally:
        httpx.put(f"{stack.emulator_url}/_emulator/faults", json={}).raise_for_status()
    assert run["state_type"] == "FAILED"
    assert run["state"]["message"] == "1 of 1 jobs failed (1 failed)"
    failed_at = time.monotonic()
    while time.monotonic() - failed_at < 60 and not any(run["name"] in b for b in receiver.bodies):
        time.sleep(0.5)
    alerts = [body for body in receiver.bodies if run["name"] in body]
    assert alerts, f"no alert naming {run['name']} within 60 s: {receiver.bodies}"
    assert len(alerts) == 1, alerts
    body = json.loads(alerts[0])["body"]
    assert "1 of 1 jobs failed" in body
    assert f"- job {job_id} failed: " in body  # each job's reason
    assert f"{stack.api_url.removesuffix('/api')}/runs/flow-run/{run_id}" in body  # the link


def wait_for_alerts(receiver: Receiver, fragment: str, timeout_s: float = 60) -> list[str]:
    """The alert bodies that contain ``fragment``, once one has come (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [b for b in receiver.bodies if fragment in b]
        if found:
            return found
        time.sleep(0.5)
    return []


def test_a_failed_pipeline_sends_one_alert_not_one_per_subflow(
    stack: Stack, receiver: Receiver
) -> None:
    spec = load_regions_file(SAMPLE).model_dump(mode="json")
    httpx.put(
        f"{stack.emulator_url}/_emulator/faults", json={"rate_job_error": 1.0}
    ).raise_for_status()
    try:
        run_id = trigger(
            stack, "ocr-pipeline/pipeline", {"jobs": [spec]}, key=f"pipeline-{uuid.uuid4()}"
        )
        run = wait_for_run(stack, run_id)
    finally:
        httpx.put(f"{stack.emulator_url}/_emulator/faults", json={}).raise_for_status()
    assert run["state_type"] == "FAILED", run["state"]
    assert wait_for_alerts(receiver, run["name"])
    time.sleep(10)  # room for a second alert, had the fetch subflow sent one
    with api(stack) as http:
        children = http.post(
            "/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}}
        ).json()
    names = [child["name"] for child in children]
    assert names, "the pipeline ran no subflow"
    assert [b for b in receiver.bodies if run["name"] in b and "failed" in b]
    assert not [b for b in receiver.bodies for name in names if name in b], names


def test_a_service_unreachable_for_a_while_alerts_while_the_run_keeps_retrying(
    stack: Stack, secret: str, receiver: Receiver
) -> None:
    job_id = asyncio.run(submit_recorded_job(stack, secret))
    httpx.put(f"{stack.emulator_url}/_emulator/faults", json={"rate_5xx": 1.0}).raise_for_status()
    try:
        run_id = trigger(stack, "fetch-results/fetch", {"job_ids": [job_id]}, key=f"down-{job_id}")
        alerts = wait_for_alerts(receiver, "unreachable")  # OCRFLOW_ALERT_UNREACHABLE_S=4
    finally:
        httpx.put(f"{stack.emulator_url}/_emulator/faults", json={}).raise_for_status()
    assert alerts, receiver.bodies
    body = json.loads(alerts[0])["body"]
    assert "has been unreachable for" in body
    assert "HTTP 5" in body  # the last error
    run = wait_for_run(stack, run_id)  # the run rode the outage out
    assert run["state_type"] == "COMPLETED", run["state"]


def test_a_short_interval_schedule_fires_a_sweep_by_itself(stack: Stack) -> None:
    subprocess.run(
        [sys.executable, "-m", "ocrflow.cli", "sweep-interval", "5"],
        env=stack.env,
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with api(stack) as http:
        deployment = http.get("/deployments/name/fetch-results/sweep").json()
        query = {
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        }
        deadline = time.monotonic() + 120
        completed: list[Any] = []
        while time.monotonic() < deadline and not completed:
            completed = http.post("/flow_runs/filter", json=query).json()
            time.sleep(2)
    assert completed, "no sweep run completed within 120 s"
    assert completed[0]["auto_scheduled"] is True


def test_no_secret_in_logs_artifacts_or_events(stack: Stack, secret: str) -> None:
    for log in stack.logs.glob("*.log"):
        assert secret not in log.read_text(errors="replace"), log.name
    with api(stack) as http:
        logs = http.post("/logs/filter", json={"limit": 200}).text
        artifacts = http.post("/artifacts/filter", json={"limit": 200}).text
        events = http.post("/events/filter", json={"limit": 50}).text
        variables = http.post("/variables/filter", json={"limit": 200}).text
        runs = http.post("/flow_runs/filter", json={"limit": 200}).text
        block = http.post("/block_documents/filter", json={"include_secrets": False}).text
    for where, text in {
        "logs": logs,
        "artifacts": artifacts,
        "events": events,
        "variables": variables,
        "flow runs": runs,
        "blocks": block,
    }.items():
        assert secret not in text, where
    assert "credentials from block" in logs  # the flows did read the block
