"""The emulator's token endpoint and bearer checks."""

from __future__ import annotations

import base64

import httpx

from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.emulator.conftest import Emulator

GOOD = {
    "grant_type": "client_credentials",
    "client_id": DEMO_CLIENT_ID,
    "client_secret": DEMO_CLIENT_SECRET,
}


async def test_form_credentials_get_a_bearer_token(emulator: Emulator) -> None:
    answer = await emulator.http.post("/connect/token", data=GOOD)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].count(".") == 2  # JWT-like: header.payload.signature


async def test_multipart_credentials_are_accepted(emulator: Emulator) -> None:
    files = {key: (None, value) for key, value in GOOD.items()}
    answer = await emulator.http.post("/connect/token", files=files)
    assert answer.status_code == 200


async def test_basic_header_credentials_are_accepted(emulator: Emulator) -> None:
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    answer = await emulator.http.post(
        "/connect/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200


async def test_bad_credentials_are_invalid_client(emulator: Emulator) -> None:
    answer = await emulator.http.post("/connect/token", data={**GOOD, "client_secret": "wrong"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_client"}


async def test_wrong_grant_type_is_refused(emulator: Emulator) -> None:
    answer = await emulator.http.post("/connect/token", data={**GOOD, "grant_type": "password"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "unsupported_grant_type"}


async def test_a_json_body_is_told_the_form_encoding_is_expected(emulator: Emulator) -> None:
    answer = await emulator.http.post("/connect/token", json=GOOD)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in body["error_description"]
    assert "application/json" in body["error_description"]
    # Not a credential failure: a client sending JSON again and again is never banned.
    for _ in range(7):
        assert (await emulator.http.post("/connect/token", json=GOOD)).status_code == 400
    assert (await emulator.http.post("/connect/token", data=GOOD)).status_code == 200


async def test_a_form_without_grant_type_is_an_invalid_request(emulator: Emulator) -> None:
    without = {k: v for k, v in GOOD.items() if k != "grant_type"}
    answer = await emulator.http.post("/connect/token", data=without)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert "grant_type" in answer.json()["error_description"]


async def test_more_than_five_failures_ban_the_pair_for_ten_minutes(emulator: Emulator) -> None:
    bad = {**GOOD, "client_secret": "wrong"}
    statuses = [
        (await emulator.http.post("/connect/token", data=bad)).status_code for _ in range(7)
    ]
    assert statuses == [400] * 6 + [429]
    banned = await emulator.http.post("/connect/token", data=bad)
    assert banned.headers["Retry-After"] == "600"
    # The good pair is not banned; the bad one is free again after the ban.
    assert (await emulator.http.post("/connect/token", data=GOOD)).status_code == 200
    emulator.clock.now += 600
    assert (await emulator.http.post("/connect/token", data=bad)).status_code == 400


async def test_missing_bearer_is_401_with_a_challenge(emulator: Emulator) -> None:
    answer = await emulator.http.get("/v5.0/ocr/RecognizeRegions", params={"id": "x"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_bearer_is_401_invalid_token(emulator: Emulator) -> None:
    answer = await emulator.http.get(
        "/v5.0/ocr/RecognizeRegions",
        params={"id": "x"},
        headers={"Authorization": "Bearer forged.token.value"},
    )
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


async def test_tokens_expire_after_their_lifetime(emulator: Emulator) -> None:
    await emulator.authorize()
    params = {"id": "b7162f77-bf10-407d-86de-ee255e422ca7"}
    assert (await emulator.http.get("/v5.0/ocr/RecognizeRegions", params=params)).status_code == 200
    emulator.clock.now += 3600
    expired = await emulator.http.get("/v5.0/ocr/RecognizeRegions", params=params)
    assert expired.status_code == 401
    assert "The token expired" in expired.headers["WWW-Authenticate"]


async def test_token_lifetime_is_configurable() -> None:
    from ocrflow.emulator.app import create_app
    from tests.emulator.conftest import ManualClock, make_settings

    app = create_app(make_settings(token_lifetime_s=60), clock=ManualClock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        answer = await http.post("/connect/token", data=GOOD)
    app.state.emulator.jobs.close()
    assert answer.json()["expires_in"] == 60
