"""A PostgreSQL database of a test's own behind a TCP proxy the test controls: what a client
sees of the database restarting, or going away, without touching the machine's server."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import make_url

from ocrflow.cli.stack import connect_postgres
from tests.services import check_reachable, database_url, drop_databases, postgres_url


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 that can drop every connection and refuse new ones, for a
    while (:meth:`restart`) or until told (:meth:`down`, then :meth:`up`)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def down(self) -> None:
        """Drop every connection and refuse new ones (connections are refused at once)."""
        self._call(self._close_all())

    def up(self) -> None:
        """Accept connections again."""
        self._call(self._listen())

    def restart(self, down_s: float) -> None:
        """Drop every connection, refuse new ones for ``down_s``, then accept again."""
        self.down()
        self._call(asyncio.sleep(down_s))
        self.up()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def _listen(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def _close_all(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {writer, up_writer}

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


@contextmanager
def proxied_database(tag: str) -> Iterator[tuple[str, FlakyProxy]]:
    """A fresh database on the test server, dropped at the end; yields the URL that reaches
    it through a :class:`FlakyProxy`, and the proxy."""
    asyncio.run(check_reachable())
    name = f"ocrflow_{tag}_{uuid.uuid4().hex[:8]}"
    direct = database_url(name)

    async def create() -> None:
        connection = await connect_postgres(direct, database="postgres")
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    parsed = make_url(postgres_url())
    try:
        with FlakyProxy((parsed.host or "127.0.0.1", parsed.port or 5432)) as proxy:
            url = make_url(direct).set(host="127.0.0.1", port=proxy.port)
            yield url.render_as_string(hide_password=False), proxy
    finally:
        asyncio.run(drop_databases([direct]))
