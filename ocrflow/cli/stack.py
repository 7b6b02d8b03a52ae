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

from ocrflow.cli.errors import UserError
from ocrflow.cli.orphans import crash_orphaned_runs
from ocrflow.cli.server_setup import SweepSchedules, read_sweep_schedules, restore_sweep_schedules
from ocrflow.cli.stackfile import (
    alive_pids,
    port_free,
    read_stack_file,
    recorded_pids,
    write_stack_file,
)
from ocrflow.emulator.server import free_port
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

PROJECT_DIR = Path(__file__).resolve().parents[2]
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
    crashed: list[str] = field(default_factory=list)  # runs a stopped worker had left

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
    sweep_interval_s: int | None = None,
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
    sweep scheduled instead of the plain one. ``sweep_interval_s``: None keeps the schedule
    the server has (set by `ocrflow sweep-interval`; prefect.yaml's the first time).

    Refuses (UserError) when this stack is running already or a port is taken. Runs that a
    stopped worker left Pending or Running are marked Crashed before the new worker starts,
    which frees the sweep's concurrency slot.
    """
    home = home.resolve()
    refuse_if_running(home)
    refuse_taken_ports(server_port, emulator_port if with_emulator else None)
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
        write_stack_file(stack.home, stack.api_url, stack.env)
        stack.crashed = asyncio.run(
            crash_orphaned_runs(
                worker_gone=True, api_url=api_url, ledger_url=stack.env["OCRFLOW_LEDGER_URL"]
            )
        )
        kept = asyncio.run(read_sweep_schedules(api_url))
        emulator_secret: str | None = None
        if with_emulator:
            port = emulator_port or free_port()
            stack.emulator_url = f"http://127.0.0.1:{port}"
            emulator_secret = secrets.get("OCRFLOW_EMULATOR_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            stack.pids["emulator"] = _spawn(
                stack,
                "emulator",
                [sys.executable, "-m", "ocrflow.emulator", "--port", str(port)],
                {**env, "OCRFLOW_EMULATOR_CLIENT_SECRET": emulator_secret},
            )
            _wait_http(f"{stack.emulator_url}/_emulator/faults", 60, stack, "emulator")
        _run(
            stack,
            [_bin("prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        )
        credentials_env = _credentials_env(stack, secrets, emulator_secret)
        _run(stack, [sys.executable, "-m", "ocrflow.cli", "setup-credentials"], credentials_env)
        _run(stack, [_bin("prefect"), "--no-prompt", "deploy", "--all"])
        _schedule_sweep(stack, kept, sweep_interval_s, shard_workers)
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
                [sys.executable, "-m", "ocrflow.cli", "setup-alerts", "--webhook-url", webhook_url],
            )
    except BaseException:
        stop_stack(stack)
        raise
    finally:
        (home / "pids.json").write_text(json.dumps(stack.pids))
    return stack


def refuse_if_running(home: Path) -> None:
    """UserError when a process of the stack in ``home`` is still alive."""
    alive = alive_pids(home)
    if alive:
        where = read_stack_file(home).get("api_url", "")
        running = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items())
        raise UserError(
            f"the stack in {home} is running already: {running}"
            + (f"; its API is {where}" if where else "")
            + "; stop it first with `ocrflow stop`"
        )


def _credentials_env(
    stack: Stack, secrets: dict[str, str], emulator_secret: str | None
) -> dict[str, str]:
    """What the credentials block is saved from: the emulator's own credentials offline,
    else OCRFLOW_BASE_URL, _CLIENT_ID and _CLIENT_SECRET as set."""
    if stack.emulator_url is not None:
        return {
            "OCRFLOW_BASE_URL": stack.emulator_url,
            "OCRFLOW_CLIENT_ID": stack.env.get("OCRFLOW_EMULATOR_CLIENT_ID", DEMO_CLIENT_ID),
            "OCRFLOW_CLIENT_SECRET": emulator_secret or "",
        }
    return {"OCRFLOW_CLIENT_SECRET": secrets.get("OCRFLOW_CLIENT_SECRET", "")}


def refuse_taken_ports(server_port: int, emulator_port: int | None) -> None:
    """UserError when the server's or the emulator's port is taken: the part would not
    start, and the stack would talk to whatever answers there instead."""
    for part, port, option in (
        ("server", server_port, "--port"),
        ("emulator", emulator_port, "--emulator-port"),
    ):
        if port is not None and not port_free(port):
            raise UserError(
                f"port {port} (for the {part}) is in use by another process: stop it, or "
                f"start the stack with {option} N"
            )


def _schedule_sweep(
    stack: Stack, kept: SweepSchedules | None, interval_s: int | None, shard_workers: int
) -> None:
    """The sweep's schedule after a deploy: as given, else as the server had it before."""
    if interval_s is None and not shard_workers:
        if kept is not None:
            asyncio.run(restore_sweep_schedules(stack.api_url, kept))
        return
    seconds = interval_s or (kept.interval_s() if kept else None) or DEFAULT_SWEEP_INTERVAL_S
    command = [sys.executable, "-m", "ocrflow.cli", "sweep-interval", str(seconds)]
    sharded = ["--sharded", "--shards", str(shard_workers)] if shard_workers else ["--single"]
    _run(stack, [*command, *sharded])


def stop_stack(stack: Stack | None = None, home: Path | None = None) -> list[str]:
    """Stop the stack's processes (worker first); returns the names stopped."""
    if stack is None:
        if home is None:
            raise ValueError("give the stack or its folder")
        pids = recorded_pids(home)
    else:
        pids = stack.pids
    recorded = read_stack_file(home or Path()) if stack is None else {}
    api_url = stack.api_url if stack is not None else recorded.get("api_url")
    ledger_url = (stack.env if stack is not None else recorded).get("OCRFLOW_LEDGER_URL")
    stopped = []
    # Workers and the local server's runners first: what runs flows goes before the server.
    workers = sorted(name for name in pids if "worker" in name or name.startswith("runner-"))
    for name in (*workers, "emulator", "server"):
        pid = pids.get(name)
        if pid is None:
            continue
        if name == "server" and api_url and _alive(pid):  # the workers are gone by now
            _crash_orphans_before_stopping(api_url, ledger_url)
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


def _crash_orphans_before_stopping(api_url: str, ledger_url: str | None) -> None:
    """Runs the stopped workers left unfinished, marked Crashed while the server is up (and
    the jobs they leased given back)."""
    try:
        asyncio.run(crash_orphaned_runs(worker_gone=True, api_url=api_url, ledger_url=ledger_url))
    except Exception as exc:
        print(
            f"could not mark the stopped workers' runs crashed ({exc}); `serve` will",
            file=sys.stderr,
        )


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
