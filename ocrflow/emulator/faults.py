"""The fault middleware: 429 storms, 5xx, dropped connections and slow answers, by settings."""

from __future__ import annotations

import asyncio
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from ocrflow.emulator.state import EmulatorState


class ConnectionDroppedError(Exception):
    """Raised mid-response to make the server cut the connection (the drop fault)."""


class FaultMiddleware:
    """Injects the transport-level faults in front of the vendor's OCR endpoints."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v5.0/"):
            await self.app(scope, receive, send)
            return
        state, faults = self.state, self.state.faults
        state.counts["requests"] += 1
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if state.chance(faults.rate_slow):
            state.counts["fault_slow"] += 1
            await asyncio.sleep(faults.slow_s)
        wait = state.rate_limited()
        if wait is not None:
            state.counts["fault_rate_limited"] += 1
            await _plain(send, 429, b"Too Many Requests", {"Retry-After": str(math.ceil(wait))})
            return
        if state.chance(faults.rate_429):
            state.counts["fault_429"] += 1
            retry_after = str(math.ceil(faults.retry_after_s))
            await _plain(send, 429, b"Too Many Requests", {"Retry-After": retry_after})
            return
        if state.chance(faults.rate_5xx):
            state.counts["fault_5xx"] += 1
            status = state.rng.choice((500, 502, 504))
            await _plain(send, status, b"upstream failure (injected)", {})
            return
        if state.chance(faults.rate_drop):
            state.counts["fault_drop"] += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
            raise ConnectionDroppedError("connection dropped (injected fault)")
        await self.app(scope, receive, send)


async def _plain(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
