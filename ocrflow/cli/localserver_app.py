"""The local Prefect server's app: Prefect's own, whose "database busy" answers carry a short
``Retry-After`` (loads Prefect's server: imported only by that server's process).

On SQLite, Prefect answers 503 when a write finds the database changed under its read
(``SQLITE_BUSY_SNAPSHOT`` in WAL mode: another writer, such as its task-run recorder, just
committed). Its client then waits ``2 ** try`` seconds, 2 s at the first retry, although the
same request succeeds at once: measured, one run in three right after the server's start took
2 s longer for it. With the hint, the client retries after 0.25 s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prefect.server.api.server import create_app as create_prefect_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_S = b"0.25"


class RetrySoonWhenBusy:
    """ASGI middleware: a 503 without ``Retry-After`` gets ``RETRY_AFTER_S``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan, websockets: as they are
            await self.app(scope, receive, send)
            return

        async def send_with_hint(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"retry-after", RETRY_AFTER_S)]}
            await send(message)

        await self.app(scope, receive, send_with_hint)


def create_app() -> RetrySoonWhenBusy:
    """The app uvicorn serves (``--factory``)."""
    return RetrySoonWhenBusy(create_prefect_app())
