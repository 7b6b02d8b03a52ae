"""The emulator under a real uvicorn on 127.0.0.1: dropped connections, and the vendor's SDK
reading every sample with the SDK's own defaults."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import aspose_ocr_cloud as sdk
import httpx
import pytest

from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.emulator.conftest import SAMPLE_NAMES, SAMPLES, expected_texts, make_settings

JOB = "b7162f77-bf10-407d-86de-ee255e422ca7"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(create_app(make_settings())) as url:
        yield url


def token(base_url: str) -> str:
    answer = httpx.post(
        f"{base_url}/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
        timeout=10,
    )
    answer.raise_for_status()
    value: str = answer.json()["access_token"]
    return value


def test_dropped_connections_reach_the_client_as_protocol_errors(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {token(base_url)}"}
    httpx.put(f"{base_url}/_emulator/faults", json={"rate_drop": 1.0}, timeout=10)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(
                f"{base_url}/v5.0/ocr/RecognizeRegions",
                params={"id": JOB},
                headers=headers,
                timeout=10,
            )
    finally:
        httpx.put(f"{base_url}/_emulator/faults", json={}, timeout=10)
    healthy = httpx.get(
        f"{base_url}/v5.0/ocr/RecognizeRegions", params={"id": JOB}, headers=headers, timeout=10
    )
    assert healthy.json()["taskStatus"] == "NotExist"


@pytest.mark.parametrize(
    ("faults", "expected_status"),
    [
        ({"rate_429": 1.0, "retry_after_s": 2}, 429),
        ({"rate_5xx": 1.0}, 500),
        ({"rate_token_expired": 1.0}, 401),
        ({"rate_limit_rps": 0.001}, 200),  # the first request of a second still passes
        ({"latency_s": 0.05}, 200),
    ],
)
def test_fault_modes_over_a_real_socket(
    base_url: str, faults: dict[str, float], expected_status: int
) -> None:
    headers = {"Authorization": f"Bearer {token(base_url)}"}
    httpx.put(f"{base_url}/_emulator/faults", json=faults, timeout=10).raise_for_status()
    try:
        answer = httpx.get(
            f"{base_url}/v5.0/ocr/RecognizeRegions", params={"id": JOB}, headers=headers, timeout=10
        )
    finally:
        httpx.put(f"{base_url}/_emulator/faults", json={}, timeout=10)
    if expected_status == 500:
        assert answer.status_code in (500, 502, 504)
    else:
        assert answer.status_code == expected_status
    if expected_status == 429:
        assert answer.headers["Retry-After"] == "2"


def test_malformed_json_over_a_real_socket(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {token(base_url)}"}
    httpx.put(f"{base_url}/_emulator/faults", json={"rate_malformed_json": 1.0}, timeout=10)
    try:
        answer = httpx.get(
            f"{base_url}/v5.0/ocr/RecognizeRegions", params={"id": JOB}, headers=headers, timeout=10
        )
    finally:
        httpx.put(f"{base_url}/_emulator/faults", json={}, timeout=10)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_the_official_sdk_reads_every_sample_with_its_defaults(base_url: str, sample: str) -> None:
    # The SDK (24.11.0) cannot fetch its own token (contract §8): we fetch one and hand it over.
    config = sdk.Configuration(host=base_url, access_token=token(base_url))
    api = sdk.RecognizeRegionsApi(sdk.ApiClient(config))
    document = json.loads((SAMPLES / f"{sample}.regions.json").read_text())
    regions = [
        sdk.OCRRegion(
            order=region["order"],
            rect=sdk.OCRRect(
                top_left_x=region["rect"]["topLeftX"],
                top_left_y=region["rect"]["topLeftY"],
                bottom_right_x=region["rect"]["bottomRightX"],
                bottom_right_y=region["rect"]["bottomRightY"],
            ),
        )
        for region in document["regions"]
    ]
    # The SDK takes the image as a base64 str; bytes fail in its json.dumps (contract §2).
    image = base64.b64encode((SAMPLES / document["image"]).read_bytes()).decode()
    settings = sdk.OCRSettingsRecognizeRegions(
        language=sdk.Language.ENGLISH, result_type=sdk.ResultType.TEXT, regions=regions
    )
    # Everything else as a user of the vendor's SDK sends it: its defaults, binarization on.
    assert settings.make_binarization is True
    assert settings.make_skew_correct is True
    body = sdk.OCRRecognizeRegionsBody(image=image, settings=settings)
    job_id = api.post_recognize_regions(body)
    response = None
    for _ in range(200):  # bounded: about 20 s at most
        response = api.get_recognize_regions(job_id)
        if response.task_status in (sdk.OCRTaskStatus.COMPLETED, sdk.OCRTaskStatus.ERROR):
            break
        time.sleep(0.1)
    assert response is not None
    assert response.task_status == sdk.OCRTaskStatus.COMPLETED
    assert response.results is not None
    texts = [base64.b64decode(str(result.data)).decode() for result in response.results]
    assert texts == expected_texts(sample)
