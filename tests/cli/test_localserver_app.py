"""The local server's "database busy" answers tell Prefect's client to come back soon."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ocrflow.cli.localserver_app import RETRY_AFTER_S, RetrySoonWhenBusy

Message = MutableMapping[str, Any]


def answering(status: int, headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def started(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await RetrySoonWhenBusy(answering(status, headers))({"type": "http"}, receive, send)
    return sent[0]


async def test_a_busy_answer_gets_a_short_retry_after() -> None:
    start = await started(503, [(b"content-type", b"application/json")])
    assert (b"retry-after", RETRY_AFTER_S) in start["headers"]
    assert (b"content-type", b"application/json") in start["headers"]


async def test_other_answers_and_a_servers_own_hint_are_left_as_they_are() -> None:
    assert (await started(200, []))["headers"] == []
    own = [(b"Retry-After", b"5")]
    assert (await started(503, own))["headers"] == own
