"""The async client through httpx.MockTransport: every status, retries, faults and bad input."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from ocrflow.client import OcrClient
from ocrflow.errors import (
    ApiError,
    AuthError,
    InvalidJobIdError,
    RateLimitedError,
    ResponseFormatError,
    ResponseTooLargeError,
    TransportError,
)
from ocrflow.health import ServiceHealth
from ocrflow.models import RecognizeRegionsSettings, Rect, Region, ResultType, TaskStatus
from ocrflow.polling import PollPolicy
from ocrflow.settings import ClientSettings
from tests.unit.fakes import FakeClock

JOB = "b7162f77-bf10-407d-86de-ee255e422ca7"
REGIONS = [Region(rect=Rect.from_xywh(10, 20, 100, 30), order=0)]
Handler = Callable[[httpx.Request], httpx.Response]


class Api:
    """A scripted service: token requests are answered, OCR requests go to ``script``."""

    def __init__(self, *script: httpx.Response | Exception | Handler) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.bearers: list[str | None] = []  # snapshots: a replay reuses the request object
        self.token_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            self.token_requests += 1
            return httpx.Response(
                200, json={"access_token": f"t{self.token_requests}", "expires_in": 3600}
            )
        self.requests.append(request)
        self.bearers.append(request.headers.get("Authorization"))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)


def ocr_answer(status: str = "Completed", **extra: object) -> httpx.Response:
    return httpx.Response(200, json={"id": JOB, "taskStatus": status, **extra})


def make_client(api: Api, clock: FakeClock, **overrides: object) -> OcrClient:
    config = ClientSettings.model_validate(
        {
            "base_url": "https://api.example",
            "client_id": "id",
            "client_secret": "secret",
            "max_attempts": 4,
            "backoff_base_s": 1.0,
            "backoff_cap_s": 8.0,
            **overrides,
        }
    )
    return OcrClient(
        config,
        transport=httpx.MockTransport(api),
        sleep=clock.sleep,
        rand=lambda: 1.0,
        clock=clock,
    )


async def test_submit_posts_the_exact_wire_body_and_returns_the_job_id() -> None:
    api = Api(httpx.Response(200, text=JOB))
    async with make_client(api, FakeClock()) as client:
        job_id = await client.submit_regions(
            b"\x89PNG-bytes", REGIONS, RecognizeRegionsSettings(result_type=ResultType.HOCR)
        )
    assert job_id == JOB
    (request,) = api.requests
    assert request.method == "POST"
    assert request.url.path == "/v5.0/ocr/RecognizeRegions"
    assert request.headers["Accept"] == "text/plain"
    assert request.headers["Content-Type"] == "application/json"
    assert api.bearers == ["Bearer t1"]
    body = json.loads(request.content)
    assert base64.b64decode(body["image"]) == b"\x89PNG-bytes"
    assert body["settings"]["resultType"] == "Hocr"
    assert body["settings"]["regions"] == [
        {
            "rect": {"topLeftX": 10, "topLeftY": 20, "bottomRightX": 110, "bottomRightY": 50},
            "order": 0,
        }
    ]


async def test_submit_reads_an_image_file_and_a_json_quoted_id(tmp_path: Path) -> None:
    image = tmp_path / "card.png"
    image.write_bytes(b"image-bytes")
    api = Api(httpx.Response(200, text=f'"{JOB.upper()}"'))
    async with make_client(api, FakeClock()) as client:
        assert await client.submit_regions(image, REGIONS) == JOB


@pytest.mark.parametrize(
    ("image", "regions", "message"),
    [
        (b"", REGIONS, "empty"),
        (b"x" * 11, REGIONS, "over the limit"),
        (Path("/nonexistent/card.png"), REGIONS, "cannot read image"),
        (b"img", [], "at least one region"),
        (b"img", [Region(rect=Rect.from_xywh(-1, 0, 5, 5))], "negative"),
        (b"img", [Region(rect=Rect())], "empty rectangle"),
    ],
)
async def test_submit_rejects_bad_input_before_any_request(
    image: bytes | Path, regions: list[Region], message: str
) -> None:
    api = Api(httpx.Response(200, text=JOB))
    async with make_client(api, FakeClock(), max_image_bytes=10) as client:
        with pytest.raises(ValueError, match=message):
            await client.submit_regions(image, regions)
    assert api.requests == []


async def test_submit_answer_without_a_job_id_is_a_format_error() -> None:
    api = Api(httpx.Response(200, text="<html>maintenance</html>"))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(ResponseFormatError, match="without a job id"):
            await client.submit_regions(b"img", REGIONS)


@pytest.mark.parametrize("status", ["Pending", "Processing", "Completed", "Error", "NotExist"])
async def test_get_result_reads_every_status(status: str) -> None:
    api = Api(ocr_answer(status))
    async with make_client(api, FakeClock()) as client:
        response = await client.get_result(JOB)
    assert response.task_status is TaskStatus(status)
    assert api.requests[0].url.params["id"] == JOB
    assert api.requests[0].headers["Accept"] == "application/json"


async def test_get_status_uses_the_utilities_endpoint() -> None:
    api = Api(ocr_answer("Processing", results=None))
    async with make_client(api, FakeClock()) as client:
        response = await client.get_status(JOB)
    assert response.task_status is TaskStatus.PROCESSING
    assert api.requests[0].url.path == "/v5.0/ocr/Utilities/GetTaskStatus"


async def test_cancel_sends_delete_with_the_id() -> None:
    api = Api(httpx.Response(200))
    async with make_client(api, FakeClock()) as client:
        await client.cancel(JOB)
    assert (api.requests[0].method, api.requests[0].url.params["id"]) == ("DELETE", JOB)


async def test_invalid_job_id_never_reaches_the_wire() -> None:
    api = Api(ocr_answer())
    async with make_client(api, FakeClock()) as client:
        for call in (client.get_result, client.get_status, client.cancel):
            with pytest.raises(InvalidJobIdError):
                await call("../../etc/passwd")
    assert api.requests == []


async def test_a_token_asked_for_ahead_serves_the_first_call() -> None:
    api = Api(ocr_answer())
    async with make_client(api, FakeClock()) as client, client.token_ahead():
        await asyncio.sleep(0)  # the run's own first steps
        await client.get_result(JOB)
    assert api.token_requests == 1
    assert api.bearers == ["Bearer t1"]


async def test_a_refused_token_ahead_is_the_first_calls_error_not_the_runs() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client"})

    transport = httpx.MockTransport(refuse)
    config = ClientSettings(base_url="https://api.example", client_id="id", client_secret="no")
    async with OcrClient(config, transport=transport) as client, client.token_ahead():
        await asyncio.sleep(0)
        with pytest.raises(AuthError):
            await client.get_result(JOB)


async def test_401_renews_the_token_and_replays_the_request() -> None:
    api = Api(httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}), ocr_answer())
    async with make_client(api, FakeClock()) as client:
        response = await client.get_result(JOB)
    assert response.task_status is TaskStatus.COMPLETED
    assert api.bearers == ["Bearer t1", "Bearer t2"]


async def test_401_after_renewal_is_an_auth_error_once_the_attempts_are_spent() -> None:
    api = Api(httpx.Response(401))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(AuthError, match="refused even after renewing"):
            await client.get_result(JOB)
    assert api.token_requests == 1 + 4  # the first token, then one renewal per attempt
    assert len(api.requests) == 2 * 4


async def test_a_read_refused_twice_in_a_row_is_tried_again_with_a_newer_token() -> None:
    api = Api(httpx.Response(401), httpx.Response(401), ocr_answer())
    async with make_client(api, FakeClock()) as client:
        response = await client.get_result(JOB)
    assert response.task_status is TaskStatus.COMPLETED
    assert api.bearers == ["Bearer t1", "Bearer t2", "Bearer t2"]


async def test_429_honours_retry_after() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(429, headers={"Retry-After": "3"}), ocr_answer())
    async with make_client(api, clock) as client:
        await client.get_result(JOB)
    assert clock.sleeps == [3.0]


async def test_429_without_retry_after_backs_off() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(429), httpx.Response(429), ocr_answer())
    async with make_client(api, clock) as client:
        await client.get_result(JOB)
    assert clock.sleeps == [1.0, 2.0]


async def test_retry_after_longer_than_allowed_is_raised_to_the_caller() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(429, headers={"Retry-After": "600"}), ocr_answer())
    async with make_client(api, clock, max_retry_after_s=60) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get_result(JOB)
    assert caught.value.retry_after_s == 600.0
    assert clock.sleeps == []


async def test_503_then_success() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(503, headers={"Retry-After": "1"}), ocr_answer())
    async with make_client(api, clock) as client:
        assert (await client.get_result(JOB)).task_status is TaskStatus.COMPLETED
    assert len(api.requests) == 2


async def test_5xx_then_success_with_capped_backoff() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(500), httpx.Response(502), httpx.Response(504), ocr_answer())
    async with make_client(api, clock) as client:
        assert (await client.get_result(JOB)).task_status is TaskStatus.COMPLETED
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_persistent_5xx_gives_up_after_max_attempts() -> None:
    clock = FakeClock()
    api = Api(httpx.Response(500, text="boom"))
    async with make_client(api, clock) as client:
        with pytest.raises(ApiError) as caught:
            await client.get_result(JOB)
    assert caught.value.status_code == 500
    assert caught.value.body == "boom"
    assert len(api.requests) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_transport_errors_exhausted_become_a_transport_error() -> None:
    clock = FakeClock()
    api = Api(httpx.ConnectError("connection refused"))
    async with make_client(api, clock) as client:
        with pytest.raises(TransportError, match="ConnectError"):
            await client.get_result(JOB)
    assert len(api.requests) == 4


async def test_read_timeout_then_success() -> None:
    api = Api(httpx.ReadTimeout("slow"), ocr_answer())
    async with make_client(api, FakeClock()) as client:
        assert (await client.get_result(JOB)).task_status is TaskStatus.COMPLETED


async def test_post_is_retried_only_when_it_surely_was_not_sent() -> None:
    api = Api(httpx.ConnectError("refused"), httpx.Response(200, text=JOB))
    async with make_client(api, FakeClock()) as client:
        assert await client.submit_regions(b"img", REGIONS) == JOB
    for ambiguous in (httpx.ReadTimeout("sent, no answer"), httpx.Response(500)):
        api = Api(ambiguous, httpx.Response(200, text=JOB))
        async with make_client(api, FakeClock()) as client:
            with pytest.raises((TransportError, ApiError)):
                await client.submit_regions(b"img", REGIONS)
        assert len(api.requests) == 1


async def test_malformed_json_is_fetched_again() -> None:
    api = Api(httpx.Response(200, text='{"taskStatus": "Compl'), ocr_answer())
    async with make_client(api, FakeClock()) as client:
        assert (await client.get_result(JOB)).task_status is TaskStatus.COMPLETED


async def test_persistently_malformed_json_is_a_format_error() -> None:
    api = Api(httpx.Response(200, text="<html>oops</html>"))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(ResponseFormatError, match="not JSON"):
            await client.get_result(JOB)
    assert len(api.requests) == 4


async def test_unknown_status_fails_loudly_without_retrying() -> None:
    api = Api(ocr_answer("Exploded"))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(ResponseFormatError, match="unknown taskStatus 'Exploded'"):
            await client.get_result(JOB)
    assert len(api.requests) == 1


async def test_answer_for_another_job_is_refused() -> None:
    other = "00000000-0000-0000-0000-000000000001"
    api = Api(httpx.Response(200, json={"id": other, "taskStatus": "Completed"}))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(ResponseFormatError, match="answer is for"):
            await client.get_result(JOB)


async def test_client_errors_are_not_retried() -> None:
    api = Api(httpx.Response(404, text="no such route"))
    async with make_client(api, FakeClock()) as client:
        with pytest.raises(ApiError, match="HTTP 404") as caught:
            await client.get_result(JOB)
    assert caught.value.status_code == 404
    assert len(api.requests) == 1


async def test_wait_for_result_polls_until_completed() -> None:
    clock = FakeClock()
    api = Api(ocr_answer("Pending"), ocr_answer("Processing"), ocr_answer("Completed"))
    policy = PollPolicy(first_delay_s=2.0, growth=2.0, jitter=0.0)
    async with make_client(api, clock) as client:
        response = await client.wait_for_result(JOB, policy, clock=clock)
    assert response.task_status is TaskStatus.COMPLETED
    assert clock.sleeps == [2.0, 4.0]


async def test_rate_budget_spaces_every_request() -> None:
    clock = FakeClock()
    api = Api(ocr_answer())
    async with make_client(api, clock, rate_limit_rps=4.0) as client:
        for _ in range(5):
            await client.get_result(JOB)
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]


def _chunked(body: bytes, size: int = 4096) -> httpx.Response:
    """An answer without Content-Length, streamed in chunks (as chunked transfer arrives)."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    return httpx.Response(200, headers={"Content-Type": "application/json"}, content=chunks())


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda body: httpx.Response(200, content=body), id="declared-length"),
        pytest.param(_chunked, id="chunked"),
        pytest.param(
            lambda body: httpx.Response(
                200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body)
            ),
            id="gzip-bomb",
        ),
    ],
)
async def test_an_answer_over_the_size_limit_is_refused_unread(
    answer: Callable[[bytes], httpx.Response],
) -> None:
    data = "A" * 400_000  # 400 kB of base64; compresses to almost nothing
    body = json.dumps({"id": JOB, "taskStatus": "Completed", "results": [{"data": data}]})
    api = Api(answer(body.encode()))
    async with make_client(api, FakeClock(), max_response_bytes=100_000) as client:
        with pytest.raises(ResponseTooLargeError, match="over the 100000-byte limit"):
            await client.get_result(JOB)
    assert len(api.requests) == 1  # the same answer would come again: not retried


async def test_an_answer_within_the_size_limit_reads_through_the_bounded_reader() -> None:
    entry = {"type": "Text", "data": "A" * 1000}
    body = json.dumps({"id": JOB, "taskStatus": "Completed", "results": [entry]}).encode()
    api = Api(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body))
    )
    async with make_client(api, FakeClock(), max_response_bytes=len(body)) as client:
        response = await client.get_result(JOB)
    assert response.task_status is TaskStatus.COMPLETED
    assert response.results is not None
    assert response.results[0].data == "A" * 1000


async def test_the_client_tells_its_health_how_long_the_service_has_been_away() -> None:
    clock = FakeClock()
    api = Api(
        httpx.Response(503, text="down"),
        httpx.ConnectError("refused"),
        httpx.Response(500, text="boom"),
        ocr_answer("Completed"),
    )
    async with make_client(api, clock) as client:
        failures_seen: list[float] = []

        async def watch(seconds: float) -> None:  # what the run sees while the client retries
            failures_seen.append(client.health.down_for())
            await FakeClock.sleep(clock, seconds)

        client._sleep = watch
        await client.get_result(JOB)
        assert client.health.down_for() == 0.0  # answered at last: the outage is over
    assert failures_seen[0] == 0.0  # down since the first failure
    assert failures_seen[-1] == clock.sleeps[0] + clock.sleeps[1]  # and still, two waits on


def test_service_health_alerts_once_per_outage_after_its_delay() -> None:
    clock = FakeClock(start=0.0)
    health = ServiceHealth(clock=clock)
    assert not health.due_alert(60)
    health.failed("GET /v5.0/ocr/RecognizeRegions answered HTTP 503")
    clock.now = 59.0
    assert not health.due_alert(60)
    clock.now = 60.0
    assert health.due_alert(60)
    assert not health.due_alert(60)  # once an outage
    health.failed("ConnectError")
    assert health.failures == 2
    health.answered()
    assert health.down_for() == 0.0
    health.failed("again")
    clock.now = 200.0
    assert health.due_alert(60)  # a new outage alerts again


async def test_checking_the_credentials_asks_once_and_keeps_the_token() -> None:
    api = Api(ocr_answer("Completed"))
    async with make_client(api, FakeClock()) as client:
        await client.check_credentials()
        await client.get_result(JOB)
    assert api.token_requests == 1  # the checked token served the call


async def test_checking_refused_credentials_raises_before_any_call() -> None:
    def refusing(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return httpx.Response(400, json={"error": "invalid_client"})
        return ocr_answer("Completed")

    config = ClientSettings.model_validate(
        {"base_url": "https://api.example", "client_id": "ocrflow-x", "client_secret": "nope"}
    )
    async with OcrClient(config, transport=httpx.MockTransport(refusing)) as client:
        with pytest.raises(
            AuthError,
            match=re.escape("rejected the credentials of client id 'ocrflow-…' (invalid_client)"),
        ):
            await client.check_credentials()


@pytest.mark.parametrize(
    ("failures", "http_calls", "polls"),
    [
        (3, 4, 1),  # the client's 4 tries absorb 3 faults: the poll layer sees nothing
        (6, 7, 2),  # 4 fail, the poll is spent; the next poll's 3rd try answers
        (8, 9, 3),  # two polls spent; never more tries than the two layers multiply to
    ],
)
async def test_retry_layers_compose_once(failures: int, http_calls: int, polls: int) -> None:
    """A 5xx run is retried by the client, then by the poll layer only: no third layer."""
    clock = FakeClock()
    api = Api(*[httpx.Response(502)] * failures, ocr_answer("Completed"))
    policy = PollPolicy(first_delay_s=30.0, growth=1.0, jitter=0.0)
    async with make_client(api, clock) as client:
        response = await client.wait_for_result(JOB, policy, clock=clock)
    assert response.task_status is TaskStatus.COMPLETED
    assert len(api.requests) == http_calls
    assert clock.sleeps.count(30.0) == polls - 1  # the poll layer's waits between polls


async def test_an_outage_longer_than_the_client_does_not_end_the_wait() -> None:
    """Connection refused for longer than the client's tries: the poller keeps to its policy
    (a check-status task run retries alike), rather than failing the job's wait."""
    clock = FakeClock()
    refused = httpx.ConnectError("refused")
    api = Api(*[refused] * 10, ocr_answer("Completed"))
    policy = PollPolicy(first_delay_s=30.0, growth=1.0, jitter=0.0)
    async with make_client(api, clock) as client:
        response = await client.wait_for_result(JOB, policy, clock=clock)
    assert response.task_status is TaskStatus.COMPLETED
    assert len(api.requests) == 11
