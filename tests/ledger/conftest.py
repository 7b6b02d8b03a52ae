"""The ledger on both engines: a SQLite file, and the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from ocrflow.ledger import Ledger, _Base

POSTGRES_URL_SETTING = "OCRFLOW_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _reset_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_Base.metadata.drop_all)
    finally:
        await engine.dispose()


async def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_SETTING, DEFAULT_POSTGRES_URL)
    try:
        await asyncio.wait_for(_reset_tables(url), timeout=10)
    except (OSError, TimeoutError) as exc:
        pytest.skip(f"no PostgreSQL reachable at {url} (set {POSTGRES_URL_SETTING}): {exc}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = await _postgres_url()
    opened = await Ledger.open(url)
    try:
        yield opened
    finally:
        await opened.close()
        if request.param == "postgresql":
            await _reset_tables(url)
