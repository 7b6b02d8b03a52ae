"""Fixtures for the emulator tests: an app on a fake clock, reached in-process over ASGI."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ocrflow.emulator.app import EmulatorState, create_app
from ocrflow.emulator.settings import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EmulatorSettings,
    ProcessingTime,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_NAMES = sorted(p.name.removesuffix(".regions.json") for p in SAMPLES.glob("*.regions.json"))
GUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class ManualClock:
    """The emulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Emulator:
    """An emulator app, its state and clock, and an httpx client wired to it in-process."""

    app: FastAPI
    clock: ManualClock
    http: httpx.AsyncClient

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state

    async def token(self) -> str:
        answer = await self.http.post(
            "/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    async def authorize(self) -> None:
        self.http.headers["Authorization"] = f"Bearer {await self.token()}"

    async def submit(self, body: dict[str, Any], feature: str = "RecognizeRegions") -> str:
        answer = await self.http.post(f"/v5.0/ocr/{feature}", json=body)
        assert answer.status_code == 200, answer.text
        return answer.text

    async def finish(self, job_id: str, feature: str = "RecognizeRegions") -> dict[str, Any]:
        """Let every queued job be worked on, move past its processing time, GET it."""
        assert self.state.jobs.drain(60)
        self.clock.now += 60  # far past the processing time, well inside the token life
        answer = await self.http.get(f"/v5.0/ocr/{feature}", params={"id": job_id})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


def sample_body(name: str, result_type: str = "Text", **settings: Any) -> dict[str, Any]:
    """The POST body for a shipped sample with all its regions."""
    document = json.loads((SAMPLES / f"{name}.regions.json").read_text())
    image = (SAMPLES / document["image"]).read_bytes()
    return {
        "image": base64.b64encode(image).decode(),
        "settings": {
            **document["settings"],
            "resultType": result_type,
            "regions": [{"rect": r["rect"], "order": r["order"]} for r in document["regions"]],
            **settings,
        },
    }


def expected_texts(name: str) -> list[str]:
    """The texts of a sample's regions, in order."""
    document = json.loads((SAMPLES / f"{name}.regions.json").read_text())
    return [r["expected"] for r in sorted(document["regions"], key=lambda r: r["order"])]


def decoded(result: dict[str, str]) -> bytes:
    return base64.b64decode(result["data"], validate=True)


def make_settings(**overrides: Any) -> EmulatorSettings:
    base: dict[str, Any] = {"processing": ProcessingTime(seconds=0.0), "seed": 7}
    return EmulatorSettings.model_validate({**base, **overrides})


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    clock = ManualClock()
    app = create_app(make_settings(), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        yield Emulator(app, clock, http)
    app.state.emulator.jobs.close()
