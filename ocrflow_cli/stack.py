"""The whole stack on one machine: a Prefect server, the emulator, the deployments, a process
worker and, when a webhook URL is given, the failure alerts. ``ocrflow serve`` /
``make serve`` start it; ``ocrflow stop`` / ``make stop`` stop it. Every process binds
127.0.0.1; their logs and pids live under the stack's folder (``var/stack``).

Scale-out (``make serve-scaled``): the server on PostgreSQL (and Redis for its messaging, when
given), shard workers that each run one shard of the sharded sweep at a time, and the sharded
sweep scheduled in place of the plain one. The ledger is whatever ``OCRFLOW_LEDGER_URL`` names.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from emulator.server import free_port
from emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from ocrflow_cli.errors import UserError

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORK_POOL = "ocrflow-process"
SHARD_QUEUE = "shards"  # as in prefect.yaml
DEFAULT_SWEEP_INTERVAL_S = 600  # as in prefect.yaml


def redis_messaging_env(redis_url: str) -> dict[str, str]:
    """The Prefect server's settings that move its messaging, event cache, causal ordering
    and concurrency leases from memory into Redis (package prefect-redis)."""
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": redis_url,
    }


@dataclass
class Stack:
    """A running stack: where it lives, its addresses and its processes."""

    home: Path
    api_url: str
    emulator_url: str | None
    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        """The folder of the processes' logs."""
        return self.home / "logs"


async def connect_postgres(
    url: str, *, database: str | None = None, timeout_s: float = 10.0
) -> asyncpg.Connection:
    """A plain asyncpg connection to the server a SQLAlchemy URL names (to ``database``, by
    default the URL's own): for creating and dropping databases, which SQLAlchemy does not."""
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=database or parsed.database,
        timeout=timeout_s,
    )


def ensure_database(url: str, timeout_s: float = 10.0) -> bool:
    """Create the PostgreSQL database ``url`` names when it does not exist; True if created.

    Raises UserError, naming the URL without its password, when the server cannot be reached.
    """
    parsed = make_url(url)
    name = parsed.database
    if not name or not name.replace("_", "").isalnum():
        raise UserError(
            f"{parsed.render_as_string(hide_password=True)}: name a database (letters, digits, _)"
        )

    async def create() -> bool:
        connection = await connect_postgres(url, database="postgres", timeout_s=timeout_s)
        try:
            if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return False
            await connection.execute(f'CREATE DATABASE "{name}"')  # a checked identifier
            return True
        finally:
            await connection.close()

    try:
        return asyncio.run(create())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        where = parsed.render_as_string(hide_password=True)
        raise UserError(f"cannot prepare PostgreSQL database {where}: {exc}") from exc


def start_stack(
    home: Path,
    *,
    server_port: int = 4200,
    emulator_port: int | None = None,
    with_emulator: bool = True,
    sweep_interval_s: int = DEFAULT_SWEEP_INTERVAL_S,
    webhook_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    startup_timeout_s: float = 180.0,
    server_database_url: str | None = None,
    redis_url: str | None = None,
    shard_workers: int = 0,
) -> Stack:
    """Start server, emulator, deployments, workers and alerts; returns once all are up.

    ``server_database_url``: the Prefect server's database (``postgresql+asyncpg://…``; by
    default SQLite in the stack's folder); PostgreSQL databases, the ledger's too, are created
    when missing. ``redis_url``: Redis for the server's messaging.
    ``shard_workers``: that many more workers, one shard run at a time each, and the sharded
    sweep scheduled instead of the plain one.
    """
    home = home.resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{server_port}/api"
    # Secrets stay out of the server's and the worker's environment: the flows read the
    # credentials block, and only the emulator gets its own secret.
    everything = {**os.environ, **(extra_env or {})}
    secrets = {k: v for k, v in everything.items() if "SECRET" in k.upper()}
    env = {
        **{k: v for k, v in everything.items() if k not in secrets},
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "OCRFLOW_PROJECT_DIR": str(PROJECT_DIR),
        "OCRFLOW_LEDGER_URL": everything.get(
            "OCRFLOW_LEDGER_URL", f"sqlite+aiosqlite:///{home / 'ocrflow.db'}"
        ),
        "OCRFLOW_RESULTS_DIR": everything.get("OCRFLOW_RESULTS_DIR", str(home / "results")),
    }
    for url in (server_database_url, env["OCRFLOW_LEDGER_URL"]):
        if url and make_url(url).get_backend_name() == "postgresql":
            ensure_database(url)  # before any process starts: a bad URL is one clear error
    stack = Stack(home, api_url, None, env)
    # The database and Redis URLs may carry passwords: the server alone is given them.
    server_env = dict(env)
    if server_database_url:
        server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = server_database_url
    if redis_url:
        server_env.update(redis_messaging_env(redis_url))
    try:
        stack.pids["server"] = _spawn(
            stack,
            "server",
            [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(server_port)],
            server_env,
        )
        _wait_http(f"{api_url}/health", startup_timeout_s, stack, "server")
        emulator_secret: str | None = None
        if with_emulator:
            port = emulator_port or free_port()
            stack.emulator_url = f"http://127.0.0.1:{port}"
            emulator_secret = secrets.get("OCRFLOW_EMULATOR_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            stack.pids["emulator"] = _spawn(
                stack,
                "emulator",
                [sys.executable, "-m", "emulator", "--port", str(port)],
                {**env, "OCRFLOW_EMULATOR_CLIENT_SECRET": emulator_secret},
            )
            _wait_http(f"{stack.emulator_url}/_emulator/faults", 60, stack, "emulator")
        _run(
            stack,
            [_bin("prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        )
        if stack.emulator_url is not None:  # the offline stack: the emulator's credentials
            credentials_env = {
                "OCRFLOW_BASE_URL": stack.emulator_url,
                "OCRFLOW_CLIENT_ID": env.get("OCRFLOW_EMULATOR_CLIENT_ID", DEMO_CLIENT_ID),
                "OCRFLOW_CLIENT_SECRET": emulator_secret or "",
            }
        else:  # the real service: OCRFLOW_BASE_URL, _CLIENT_ID and _CLIENT_SECRET as set
            credentials_env = {"OCRFLOW_CLIENT_SECRET": secrets.get("OCRFLOW_CLIENT_SECRET", "")}
        _run(stack, [sys.executable, "-m", "ocrflow_cli", "setup-credentials"], credentials_env)
        _run(stack, [_bin("prefect"), "--no-prompt", "deploy", "--all"])
        if sweep_interval_s != DEFAULT_SWEEP_INTERVAL_S or shard_workers:
            command = [sys.executable, "-m", "ocrflow_cli", "sweep-interval", str(sweep_interval_s)]
            sharded = ["--sharded", "--shards", str(shard_workers)] if shard_workers else []
            _run(stack, [*command, *(sharded or ["--single"])])
        worker = [_bin("prefect"), "worker", "start", "--pool", WORK_POOL]
        # With shard workers, the first worker leaves the shards to them: it runs the rest.
        queues = ["--work-queue", "default"] if shard_workers else []
        stack.pids["worker"] = _spawn(stack, "worker", [*worker, *queues, "--name", "worker"])
        for number in range(1, shard_workers + 1):
            name = f"shard-worker-{number}"
            shard = ["--work-queue", SHARD_QUEUE, "--limit", "1", "--name", name]
            stack.pids[name] = _spawn(stack, name, [*worker, *shard])
        if webhook_url:
            _run(
                stack,
                [sys.executable, "-m", "ocrflow_cli", "setup-alerts", "--webhook-url", webhook_url],
            )
    except BaseException:
        stop_stack(stack)
        raise
    finally:
        (home / "pids.json").write_text(json.dumps(stack.pids))
    return stack


def stop_stack(stack: Stack | None = None, home: Path | None = None) -> list[str]:
    """Stop the stack's processes (worker first); returns the names stopped."""
    if stack is None:
        if home is None:
            raise ValueError("give the stack or its folder")
        pids_file = home / "pids.json"
        pids = json.loads(pids_file.read_text()) if pids_file.is_file() else {}
    else:
        pids = stack.pids
    stopped = []
    workers = sorted(name for name in pids if "worker" in name)
    for name in (*workers, "emulator", "server"):
        pid = pids.get(name)
        if pid is None:
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        process = stack.processes.pop(name, None) if stack is not None else None
        if process is not None:
            process.wait(timeout=10)  # reap it
        stopped.append(name)
    return stopped


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _spawn(stack: Stack, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
    log = (stack.logs / f"{name}.log").open("ab")
    stack.processes[name] = process = subprocess.Popen(  # noqa: S603 - ours, no shell
        command,
        cwd=PROJECT_DIR,
        env={**(env or stack.env)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole
    )
    log.close()
    return process.pid


def _run(stack: Stack, command: list[str], extra_env: dict[str, str] | None = None) -> None:
    log = stack.logs / "setup.log"
    with log.open("ab") as out:
        done = subprocess.run(  # noqa: S603 - our own executables, no shell
            command,
            cwd=PROJECT_DIR,
            env={**stack.env, **(extra_env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed (exit {done.returncode}); see {log}")


def _wait_http(url: str, timeout_s: float, stack: Stack, name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = stack.pids.get(name)
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"{name} exited while starting; see {stack.logs / (name + '.log')}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not answer at {url} within {timeout_s:.0f} s")


def _alive(pid: int) -> bool:
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0
