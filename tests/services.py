"""The local PostgreSQL and Redis the tests use. PostgreSQL's URL is a setting; where none
answers, the tests that need it are skipped, naming the setting (or fail, where CI says one
must be there). Redis is optional: the scale-out stack uses it for messaging when one answers."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL_SETTING = "OCRFLOW_TEST_POSTGRES_URL"
REQUIRE_SETTING = "OCRFLOW_TEST_REQUIRE_POSTGRES"  # `.ci/run` sets it: no PostgreSQL, no pass
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


REDIS_URL_SETTING = "OCRFLOW_TEST_REDIS_URL"


def redis_url_if_reachable(db: int) -> str | None:
    """A Redis database of the tests' own (emptied first), or None when no Redis answers."""
    import redis

    url = os.environ.get(REDIS_URL_SETTING, "redis://127.0.0.1:6379").rstrip("/") + f"/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError:
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
    import asyncpg

    url = make_url(postgres_url())
    try:
        connection = await asyncio.wait_for(
            asyncpg.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                database=url.database,
            ),
            timeout_s,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        unreachable(f"{type(exc).__name__}: {exc}")
    else:
        await connection.close()


async def drop_databases(urls: list[str]) -> None:
    """Drop the databases a test made (connections to them are closed first)."""
    import asyncpg

    server = make_url(urls[0])
    connection = await asyncpg.connect(
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        user=server.username,
        password=server.password,
        database="postgres",
    )
    try:
        for url in urls:
            name = make_url(url).database
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
