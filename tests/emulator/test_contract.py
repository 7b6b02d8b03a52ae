"""Contract: every emulator answer validates against the core client's own models.

The emulator and the client keep separate schemas on purpose; this is where a drift between
them shows. The core client drives the emulator in-process and over a real socket.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ocrflow.client import OcrClient
from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from ocrflow.errors import JobFailedError, JobNotFoundError
from ocrflow.models import (
    Language,
    RecognizeRegionsSettings,
    Rect,
    Region,
    ResponseStatusCode,
    ResultType,
    TaskStatus,
)
from ocrflow.polling import PollPolicy
from ocrflow.processing import ResultKind, process_response
from ocrflow.settings import ClientSettings
from tests.emulator.conftest import SAMPLES, ManualClock, expected_texts, make_settings

MAX_BYTES = 16 * 1024 * 1024
FAST_POLLS = PollPolicy(first_delay_s=0.05, max_delay_s=0.2, deadline_s=60)


def sample_regions(name: str) -> list[Region]:
    import json

    document = json.loads((SAMPLES / f"{name}.regions.json").read_text())
    return [Region.model_validate(r) for r in document["regions"]]


def client_settings(base_url: str) -> ClientSettings:
    return ClientSettings.model_validate(
        {"base_url": base_url, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    )


@pytest.mark.parametrize("result_type", list(ResultType))
async def test_every_result_type_parses_with_the_client_models(result_type: ResultType) -> None:
    app = create_app(make_settings(), clock=ManualClock())
    client = OcrClient(client_settings("http://emulator"), transport=httpx.ASGITransport(app=app))
    regions = sample_regions("id-card")
    async with client:
        job_id = await client.submit_regions(
            SAMPLES / "id-card.png", regions, RecognizeRegionsSettings(result_type=result_type)
        )
        assert app.state.emulator.jobs.drain(60)
        status = await client.get_status(job_id)
        response = await client.get_result(job_id)
        await client.cancel(job_id)
        gone = await client.get_result(job_id)
    app.state.emulator.jobs.close()
    assert (status.task_status, status.results) == (TaskStatus.COMPLETED, [])
    assert response.response_status_code is ResponseStatusCode.OK
    assert gone.task_status is TaskStatus.NOT_EXIST
    assert gone.response_status_code is ResponseStatusCode.TASK_NOT_FOUND
    entries = process_response(response, region_count=len(regions), max_bytes=MAX_BYTES)
    assert len(entries) == len(regions) * len(result_type.formats)
    assert all(entry.ok for entry in entries), [e.error for e in entries]
    assert {entry.region for entry in entries} == set(range(len(regions)))
    texts = [e.text for e in entries if e.kind in (ResultKind.TEXT, ResultKind.PDF)]
    if texts:
        assert texts[:: len(texts) // len(regions)] == expected_texts("id-card")


async def test_error_and_pending_answers_parse_with_the_client_models() -> None:
    clock = ManualClock()
    app = create_app(make_settings(processing={"seconds": 10.0}), clock=clock)
    client = OcrClient(client_settings("http://emulator"), transport=httpx.ASGITransport(app=app))
    async with client:
        job_id = await client.submit_regions(
            SAMPLES / "id-card.png",
            sample_regions("id-card"),
            RecognizeRegionsSettings(language=Language.GERMAN),
        )
        assert app.state.emulator.jobs.drain(60)
        pending = await client.get_result(job_id)
        clock.now = 5.0
        processing = await client.get_status(job_id)
        clock.now = 10.0
        failed = await client.get_result(job_id)
    app.state.emulator.jobs.close()
    assert pending.task_status is TaskStatus.PENDING
    assert pending.response_status_code is ResponseStatusCode.NOT_READY
    assert processing.task_status is TaskStatus.PROCESSING
    assert failed.task_status is TaskStatus.ERROR
    assert "German" in failed.messages[0]


async def test_core_client_end_to_end_over_a_real_socket() -> None:
    app = create_app(make_settings(processing={"seconds": 0.3}))
    with serve_in_thread(app) as base_url:
        async with OcrClient(client_settings(base_url)) as client:
            regions = sample_regions("application-form")
            job_ids = await asyncio.gather(
                client.submit_regions(SAMPLES / "application-form.png", regions),
                client.submit_regions(
                    SAMPLES / "application-form.png",
                    [Region(rect=Rect.from_xywh(0, 0, 10, 10))],
                    RecognizeRegionsSettings(language=Language.FRENCH),
                ),
            )
            response = await client.wait_for_result(job_ids[0], FAST_POLLS)
            with pytest.raises(JobFailedError, match="French"):
                await client.wait_for_result(job_ids[1], FAST_POLLS)
            with pytest.raises(JobNotFoundError):
                await client.wait_for_result("00000000-0000-4000-8000-000000000000", FAST_POLLS)
    entries = process_response(response, region_count=len(regions), max_bytes=MAX_BYTES)
    assert [e.text for e in entries] == expected_texts("application-form")
