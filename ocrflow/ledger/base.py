"""Opening the ledger: the engine, its tables created or upgraded, one writer on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ocrflow.clock import Clock
from ocrflow.errors import OcrflowError
from ocrflow.ledger.schema import Base, add_missing_columns, add_missing_indexes, sqlite_pragmas
from ocrflow.redact import mask_credentials


class LedgerUnavailableError(OcrflowError):
    """The ledger cannot be opened (a bad URL, a database down or refusing us); the message
    shows its URL with the password masked."""


class LedgerBase:
    """The connection: open with :meth:`open` (or ``async with Ledger.connect(url)``), close
    with :meth:`close`; writes go through :meth:`_write` (one writer at a time on SQLite)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or Clock()  # leases, stamps and ages are read on it (tests: a fake)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time: queue our own writes instead of meeting "locked".
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    async def open(cls, url: str, *, clock: Clock | None = None, upgrade: bool = True) -> Self:
        """Connect to the ledger at ``url`` and create its tables if they are missing.

        ``upgrade=False``: the caller knows the run opened (and upgraded) it already, so its
        dozen schema queries are skipped (the lease keeper's thread, which must renew soon)."""
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (
                None,
                "",
                ":memory:",
            ):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, pool_pre_ping=True)
        except Exception as exc:  # the URL's own words may hold its password: masked, unchained
            raise LedgerUnavailableError(
                f"cannot open the ledger {mask_credentials(url)}: "
                f"{type(exc).__name__}: {mask_credentials(str(exc))}"
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        try:
            if upgrade:
                async with engine.begin() as connection:
                    await connection.run_sync(Base.metadata.create_all)
                    await connection.run_sync(add_missing_columns)
                    await connection.run_sync(add_missing_indexes)
        except Exception as exc:
            await engine.dispose()
            raise LedgerUnavailableError(
                f"cannot open the ledger {mask_credentials(url)}: "
                f"{type(exc).__name__}: {mask_credentials(str(exc))}"
            ) from None
        return cls(engine, clock=clock)

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, *, clock: Clock | None = None) -> AsyncIterator[Self]:
        """The ledger at ``url``, open for the ``async with`` block and closed after it."""
        ledger = await cls.open(url, clock=clock)
        try:
            yield ledger
        finally:
            await ledger.close()

    async def close(self) -> None:
        """Release the connections."""
        await self.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._sessions.begin() as session:
                yield session
            return
        async with self._write_lock, self._sessions.begin() as session:
            yield session
