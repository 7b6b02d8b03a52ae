"""Fault modes, set at start or changed per test through ``PUT /_emulator/faults``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from ocrflow.emulator.app import create_app
from tests.emulator.conftest import Emulator, ManualClock, make_settings, sample_body

JOB = "b7162f77-bf10-407d-86de-ee255e422ca7"


async def set_faults(emulator: Emulator, **faults: Any) -> None:
    answer = await emulator.http.put("/_emulator/faults", json=faults)
    assert answer.status_code == 200, answer.text


async def get_job(emulator: Emulator, job_id: str = JOB) -> httpx.Response:
    return await emulator.http.get("/v5.0/ocr/RecognizeRegions", params={"id": job_id})


async def test_faults_are_readable_and_unknown_ones_refused(emulator: Emulator) -> None:
    await set_faults(emulator, rate_429=0.5)
    assert (await emulator.http.get("/_emulator/faults")).json()["rate_429"] == 0.5
    refused = await emulator.http.put("/_emulator/faults", json={"rate_teapot": 1})
    assert refused.status_code == 422
    out_of_range = await emulator.http.put("/_emulator/faults", json={"rate_5xx": 2})
    assert out_of_range.status_code == 422


async def test_faults_can_be_set_at_start() -> None:
    app = create_app(make_settings(faults={"rate_5xx": 1.0}), clock=ManualClock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        answer = await http.get("/v5.0/ocr/RecognizeRegions", params={"id": JOB})
    app.state.emulator.jobs.close()
    assert answer.status_code in (500, 502, 504)


async def test_429_share_answers_with_retry_after(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_429=1.0, retry_after_s=3)
    answer = await get_job(emulator)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "3")


async def test_429_share_is_a_share(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_429=0.3)
    statuses = [(await get_job(emulator)).status_code for _ in range(400)]
    assert 80 < statuses.count(429) < 160
    assert statuses.count(200) == 400 - statuses.count(429)


async def test_5xx_share(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_5xx=1.0)
    statuses = {(await get_job(emulator)).status_code for _ in range(30)}
    assert statuses <= {500, 502, 504}
    assert len(statuses) >= 2


async def test_added_latency(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, latency_s=0.2)
    started = time.perf_counter()
    answer = await get_job(emulator)
    assert answer.status_code == 200
    assert time.perf_counter() - started >= 0.2


async def test_tokens_expiring_early_are_refused_then_renewable(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_token_expired=1.0)
    first = await get_job(emulator)
    assert first.status_code == 401
    assert "expired" in first.headers["WWW-Authenticate"]
    await set_faults(emulator)
    assert (await get_job(emulator)).status_code == 401  # that token is gone for good
    await emulator.authorize()
    assert (await get_job(emulator)).status_code == 200


async def test_malformed_json_bodies(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_malformed_json=1.0)
    answer = await get_job(emulator)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


async def test_corrupt_base64_in_a_result(emulator: Emulator) -> None:
    await emulator.authorize()
    job_id = await emulator.submit(sample_body("id-card"))
    await set_faults(emulator, rate_corrupt_base64=1.0)
    body = await emulator.finish(job_id)
    assert body["taskStatus"] == "Completed"
    assert body["results"][0]["data"].startswith("!!corrupt*")


async def test_share_of_ids_reported_not_exist(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_not_exist=1.0)
    body = await emulator.finish(await emulator.submit(sample_body("id-card")))
    assert body["taskStatus"] == "NotExist"


async def test_share_of_jobs_ending_in_error(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_job_error=1.0)
    body = await emulator.finish(await emulator.submit(sample_body("id-card")))
    assert body["taskStatus"] == "Error"
    assert body["error"]["messages"] == ["recognition failed (injected fault)"]


async def test_token_endpoint_faults(emulator: Emulator) -> None:
    data = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
    await set_faults(emulator, token_429_rate=1.0, retry_after_s=30)
    limited = await emulator.http.post("/connect/token", data=data)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "30")
    await set_faults(emulator, token_reject_rate=1.0)
    rejected = await emulator.http.post("/connect/token", data=data)
    assert (rejected.status_code, rejected.json()) == (400, {"error": "invalid_client"})


async def test_request_rate_limit_answers_429_beyond_the_budget(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_limit_rps=5)
    statuses = [(await get_job(emulator)).status_code for _ in range(20)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]


async def test_stats_count_requests_and_injected_faults(emulator: Emulator) -> None:
    await emulator.authorize()
    await set_faults(emulator, rate_429=1.0)
    await get_job(emulator)
    stats = (await emulator.http.get("/_emulator/stats")).json()
    assert stats["counts"]["fault_429"] == 1
    assert stats["counts"]["token_requests"] == 1
    reset = await emulator.http.post("/_emulator/reset")
    assert reset.status_code == 200
    assert (await emulator.http.get("/_emulator/faults")).json()["rate_429"] == 0.0
