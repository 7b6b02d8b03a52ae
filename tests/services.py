"""The local PostgreSQL and Redis the tests use. Their URLs are settings; where none answers,
the tests that need PostgreSQL are skipped, naming the setting, and the scale-out stack runs
without Redis: unless ``OCRFLOW_TEST_REQUIRE_POSTGRES`` / ``OCRFLOW_TEST_REQUIRE_REDIS`` say
they must be there (``.ci/run`` sets both), then their absence fails the test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from ocrflow.cli.stack import Stack, connect_postgres, start_stack, stop_stack
from ocrflow.emulator.server import free_port

POSTGRES_URL_SETTING = "OCRFLOW_TEST_POSTGRES_URL"
REQUIRE_SETTING = "OCRFLOW_TEST_REQUIRE_POSTGRES"  # `.ci/run` sets it: no PostgreSQL, no pass
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


REDIS_URL_SETTING = "OCRFLOW_TEST_REDIS_URL"
REQUIRE_REDIS_SETTING = "OCRFLOW_TEST_REQUIRE_REDIS"


def redis_url_if_reachable(db: int) -> str | None:
    """A Redis database of the tests' own (emptied first), or None when no Redis answers
    (a failed test instead, where Redis is required)."""
    import redis

    url = os.environ.get(REDIS_URL_SETTING, "redis://127.0.0.1:6379").rstrip("/") + f"/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        if os.environ.get(REQUIRE_REDIS_SETTING):
            pytest.fail(f"no Redis at {url}: {exc}; {REQUIRE_REDIS_SETTING} says it must be there")
        return None
    finally:
        client.close()
    return url


def postgres_url() -> str:
    """The test database's SQLAlchemy URL (``OCRFLOW_TEST_POSTGRES_URL``)."""
    return os.environ.get(POSTGRES_URL_SETTING, DEFAULT_POSTGRES_URL)


def unreachable(reason: str) -> None:
    """Skip the test, or fail it where PostgreSQL is required."""
    where = make_url(postgres_url()).render_as_string(hide_password=True)
    message = f"no PostgreSQL reachable at {where} (set {POSTGRES_URL_SETTING}): {reason}"
    if os.environ.get(REQUIRE_SETTING):
        pytest.fail(f"{message}; {REQUIRE_SETTING} says it must be there")
    pytest.skip(message)


def database_url(name: str) -> str:
    """The URL of another database on the same server."""
    return make_url(postgres_url()).set(database=name).render_as_string(hide_password=False)


async def check_reachable(timeout_s: float = 10.0) -> None:
    """Connect once; skip (or fail) the test when nothing answers."""
    try:
        connection = await connect_postgres(postgres_url(), timeout_s=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        unreachable(f"{type(exc).__name__}: {exc}")
    else:
        await connection.close()


async def drop_databases(urls: list[str]) -> None:
    """Drop the databases a test made (connections to them are closed first)."""
    connection = await connect_postgres(urls[0], database="postgres")
    try:
        for url in urls:
            name = make_url(url).database
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextmanager
def scaled_stack(home: Path, name: str, redis_db: int, env: dict[str, str]) -> Iterator[Stack]:
    """The scale-out stack as `make serve-scaled` starts it, on databases of its own (made
    for it, dropped after it), two shard workers and the emulator in simulation mode."""
    run = f"ocrflow_{name}_{uuid.uuid4().hex[:8]}"
    server_db, ledger_db = database_url(f"{run}_prefect"), database_url(f"{run}_ledger")
    try:  # start_stack creates both databases
        stack = start_stack(
            home,
            server_port=free_port(),
            sweep_interval_s=3600,
            server_database_url=server_db,
            redis_url=redis_url_if_reachable(redis_db),
            shard_workers=2,
            extra_env={
                "OCRFLOW_LEDGER_URL": ledger_db,
                "OCRFLOW_EMULATOR_SIMULATE": "true",
                "OCRFLOW_EMULATOR_PROCESSING__SECONDS": "0",
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                **env,
            },
        )
        try:
            yield stack
        finally:
            stop_stack(stack)
    finally:
        asyncio.run(drop_databases([server_db, ledger_db]))
