"""OAuth client-credentials auth: its flow driven by hand, then through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import httpx
import pytest

from ocrflow.auth import ClientCredentialsAuth
from ocrflow.errors import ApiError, AuthError, ResponseFormatError
from tests.unit.fakes import FakeClock

TOKEN_URL = "https://api.example/connect/token"
SECRET = "s3cr3t-value-never-logged"


def token_answer(token: str = "tok-1", expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    )


def make_auth(clock: FakeClock, **options: float) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        TOKEN_URL, "client-id-123456", SECRET, clock=clock, sleep=clock.sleep, **options
    )


async def test_flow_fetches_token_then_sends_request_with_bearer() -> None:
    auth = make_auth(FakeClock())
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/v5.0/ocr/x"))
    token_request = await flow.__anext__()
    assert token_request.url == TOKEN_URL
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(token_request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-id-123456"],
        "client_secret": [SECRET],
    }
    request = await flow.asend(token_answer("abc"))
    assert request.headers["Authorization"] == "Bearer abc"
    with pytest.raises(StopAsyncIteration):
        await flow.asend(httpx.Response(200))


async def test_flow_renews_once_on_401_and_replays() -> None:
    auth = make_auth(FakeClock())
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    await flow.__anext__()
    await flow.asend(token_answer("old"))
    renewal = await flow.asend(httpx.Response(401))
    assert renewal.url == TOKEN_URL
    replay = await flow.asend(token_answer("new"))
    assert replay.headers["Authorization"] == "Bearer new"
    with pytest.raises(StopAsyncIteration):  # a second 401 is handed back, not renewed again
        await flow.asend(httpx.Response(401))
    assert auth.token_requests == 2


async def test_token_is_cached_and_renewed_a_margin_before_expiry() -> None:
    clock = FakeClock()
    auth = make_auth(clock, renew_margin_s=300)
    issued = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal issued
        if request.url.path == "/connect/token":
            issued += 1
            return token_answer(f"tok-{issued}", expires_in=3600)
        return httpx.Response(200, text=request.headers["Authorization"])

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        seen = [(await http.get("https://api.example/a")).text for _ in range(3)]
        clock.now += 3299
        seen.append((await http.get("https://api.example/a")).text)
        clock.now += 1
        seen.append((await http.get("https://api.example/a")).text)
    assert seen == ["Bearer tok-1"] * 4 + ["Bearer tok-2"]


async def test_short_lived_tokens_renew_at_half_life() -> None:
    clock = FakeClock()
    auth = make_auth(clock, renew_margin_s=300)
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    await flow.__anext__()
    await flow.asend(token_answer("short", expires_in=60))
    clock.now += 29
    again = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    assert (await again.__anext__()).headers["Authorization"] == "Bearer short"
    clock.now += 1
    renewing = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    assert (await renewing.__anext__()).url == TOKEN_URL


async def let_the_others_run() -> None:
    """Yield to every ready task, many times over, without any real wait."""
    for _ in range(200):
        await asyncio.sleep(0)


async def test_many_concurrent_callers_share_one_token_request() -> None:
    auth = make_auth(FakeClock())
    token_calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        if request.url.path == "/connect/token":
            token_calls += 1
            await let_the_others_run()  # every caller piles up behind the lock
            return token_answer()
        return httpx.Response(200)

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        answers = await asyncio.gather(*(http.get("https://api.example/a") for _ in range(50)))
    assert [a.status_code for a in answers] == [200] * 50
    assert token_calls == 1


async def test_concurrent_401s_renew_the_token_once() -> None:
    auth = make_auth(FakeClock())
    tokens = iter(["stale", "fresh"])
    token_calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        if request.url.path == "/connect/token":
            token_calls += 1
            await let_the_others_run()
            return token_answer(next(tokens))
        await asyncio.sleep(0)
        ok = request.headers["Authorization"] == "Bearer fresh"
        return httpx.Response(200 if ok else 401)

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        answers = await asyncio.gather(*(http.get("https://api.example/a") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert token_calls == 2  # the first token, then one renewal shared by all twenty 401s


async def test_rejected_credentials_fail_at_once_and_block_further_token_requests() -> None:
    clock = FakeClock()
    auth = make_auth(clock, rejected_cooldown_s=60)
    token_calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        token_calls += 1
        return httpx.Response(400, json={"error": "invalid_client"})

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(AuthError, match="invalid_client") as caught:
            await http.get("https://api.example/a")
        for _ in range(10):
            with pytest.raises(AuthError):
                await http.get("https://api.example/a")
        assert token_calls == 1
        assert SECRET not in str(caught.value)
        assert "OCRFLOW_CLIENT_SECRET" in str(caught.value)
        clock.now += 60  # after the cool-down, one more try is allowed
        with pytest.raises(AuthError):
            await http.get("https://api.example/a")
    assert token_calls == 2


async def test_a_rejection_shows_the_servers_reason_and_only_the_start_of_a_long_one() -> None:
    reasons = iter(
        [
            {"error": "invalid_request", "error_description": "expects\n  a form body"},
            {"error": "invalid_request", "error_description": "x" * 5000},
        ]
    )
    messages = []
    for _ in range(2):
        auth = make_auth(FakeClock())
        body = next(reasons)
        transport = httpx.MockTransport(lambda _request, body=body: httpx.Response(400, json=body))
        async with httpx.AsyncClient(auth=auth, transport=transport) as http:
            with pytest.raises(AuthError) as caught:
                await http.get("https://api.example/a")
        messages.append(str(caught.value))
    assert "(invalid_request: expects a form body)" in messages[0]
    assert "(invalid_request: " + "x" * 200 + "…)" in messages[1]
    assert "x" * 201 not in messages[1]


async def test_short_token_429_is_waited_out_once() -> None:
    clock = FakeClock()
    auth = make_auth(clock, max_token_wait_s=30)
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), token_answer("after-wait")])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return next(answers)
        return httpx.Response(200, text=request.headers["Authorization"])

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        assert (await http.get("https://api.example/a")).text == "Bearer after-wait"
    assert clock.sleeps == [7.0]


async def test_long_token_429_blocks_until_retry_after() -> None:
    clock = FakeClock()
    auth = make_auth(clock, max_token_wait_s=30)
    token_calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        token_calls += 1
        return httpx.Response(429, headers={"Retry-After": "600"})

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(AuthError, match="retry after 600 s") as caught:
            await http.get("https://api.example/a")
        assert caught.value.retry_after_s == 600.0
        clock.now += 599
        with pytest.raises(AuthError):
            await http.get("https://api.example/a")
    assert token_calls == 1
    assert clock.sleeps == []


async def test_token_endpoint_5xx_is_a_transient_api_error() -> None:
    auth = make_auth(FakeClock())
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    await flow.__anext__()
    with pytest.raises(ApiError) as caught:
        await flow.asend(httpx.Response(502, text="bad gateway"))
    assert caught.value.status_code == 502
    assert not isinstance(caught.value, AuthError)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"expires_in": 3600}),
        json.dumps({"access_token": "", "expires_in": 3600}),
        json.dumps({"access_token": "x", "token_type": "mac"}),
        json.dumps(["access_token"]),
    ],
)
async def test_malformed_token_answer_is_a_format_error(body: str) -> None:
    auth = make_auth(FakeClock())
    flow = auth.async_auth_flow(httpx.Request("GET", "https://api.example/x"))
    await flow.__anext__()
    with pytest.raises(ResponseFormatError, match="access_token"):
        await flow.asend(httpx.Response(200, text=body))


def test_repr_and_sync_use_never_show_the_secret() -> None:
    auth = make_auth(FakeClock())
    assert SECRET not in repr(auth)
    with pytest.raises(RuntimeError, match="async-only"):
        next(auth.sync_auth_flow(httpx.Request("GET", "https://api.example/x")))


async def test_token_answer_is_read_even_when_streamed() -> None:
    # Real transports stream bodies; a MockTransport's prepared responses would hide this.
    auth = make_auth(FakeClock())
    payload = json.dumps({"access_token": "streamed", "expires_in": 3600}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return httpx.Response(200, stream=httpx.ByteStream(payload))
        return httpx.Response(200, text=request.headers["Authorization"])

    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as http:
        assert (await http.get("https://api.example/a")).text == "Bearer streamed"
