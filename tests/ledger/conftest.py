"""The ledger on both engines: a SQLite file, and the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from ocrflow.ledger import Ledger
from ocrflow.ledger.schema import Base
from tests.services import postgres_url, unreachable
from tests.unit.fakes import ManualClock


async def _reset_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
    finally:
        await engine.dispose()


async def _postgres_url() -> str:
    url = postgres_url()
    try:
        await asyncio.wait_for(_reset_tables(url), timeout=10)
    except (OSError, TimeoutError) as exc:
        unreachable(f"{type(exc).__name__}: {exc}")
    return url


@asynccontextmanager
async def _on_postgres(clock: ManualClock | None = None) -> AsyncIterator[Ledger]:
    """A ledger in the test database, its tables dropped after it."""
    url = await _postgres_url()
    opened = await Ledger.open(url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
        await _reset_tables(url)


@pytest.fixture
def clock() -> ManualClock:
    """The ledger's wall time: a lease runs out when the test advances it, not by waiting."""
    return ManualClock()


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Ledger]:
    if request.param == "postgresql":
        async with _on_postgres(clock) as opened:
            yield opened
        return
    opened = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def postgres_ledger() -> AsyncIterator[Ledger]:
    """The ledger on PostgreSQL only: for what only PostgreSQL does (row locks)."""
    async with _on_postgres() as opened:
        yield opened
