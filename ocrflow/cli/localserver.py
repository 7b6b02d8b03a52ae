"""A local Prefect server kept in the background for the commands, so that each one does not
start (and stop) a temporary server of its own.

Measured on a 2-core machine (docs/performance.md): a temporary server costs a command about
8 s to start and 1.5 s to stop, several times the work of one image. The first command that runs
a flow with no Prefect server to use starts this one, as its own process group, with the
Prefect home the temporary server would have used (the same runs, the same database) and says
so on stderr; later commands use it. It is started before the command's imports and checks,
so that both go on at once. `ocrflow status` shows it, `ocrflow stop` stops it;
``OCRFLOW_LOCAL_SERVER=0`` turns it off (a temporary server per command, as Prefect does).
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ocrflow.cli.stackfile import (
    join_running_stack,
    port_free,
    record_pid,
    running_stack,
    wait_until_answering,
    write_stack_file,
)

HOME = Path("var/local-server")  # from the project's folder, as `var/stack`
PREFERRED_PORT = 4210  # beside the UI's 4200 (`make ui`, the stack); another when taken
STARTUP_S = 120.0


def wanted() -> bool:
    """Whether commands use a kept local server (``OCRFLOW_LOCAL_SERVER``, on by default)."""
    return os.environ.get("OCRFLOW_LOCAL_SERVER", "1").strip().lower() not in ("0", "false", "no")


@dataclass
class LocalServer:
    """The local server a command uses: already running, or being started by it."""

    api_url: str
    process: subprocess.Popen[bytes] | None = None  # set when this command started it

    def ready(self) -> str:
        """Wait until it answers (a bounded wait); its API URL."""
        process = self.process
        wait_until_answering(
            f"{self.api_url}/health",
            "the local Prefect server",
            alive=lambda: process is None or process.poll() is None,
            log=HOME / "server.log",
            timeout_s=STARTUP_S,
        )
        return self.api_url


_started_early: LocalServer | None = None


def start_early() -> None:
    """What a command that runs flows does first, before its imports (``ocrflow.cli.launch``):
    join the running stack, else use (or start) the local server, so that it boots while the
    command loads; the command's own call of :func:`use_local_server` then gets it."""
    global _started_early  # noqa: PLW0603 - one per process, handed to the command
    join_running_stack()
    _started_early = use_local_server()


def use_local_server(home: Path = HOME) -> LocalServer | None:
    """With no Prefect server named (PREFECT_API_URL) and none running (the stack's, or one
    kept from an earlier command), start one in the background; point this process at it.
    None when a server is named already, or the local server is turned off."""
    if _started_early is not None:
        return _started_early
    if os.environ.get("PREFECT_API_URL") or not wanted():
        return None
    home.mkdir(parents=True, exist_ok=True)
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once start one server, not two
        kept = running_stack(home)
        server = LocalServer(kept["api_url"]) if kept.get("api_url") else _start(home)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server


def _start(home: Path) -> LocalServer:
    """Spawn the server as Prefect spawns its temporary one (the API and the services runs
    need, no UI: `make ui` serves that), but on a port that stays, as a process that stays."""
    port = PREFERRED_PORT if port_free(PREFERRED_PORT) else any_free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT__SERVER_EPHEMERAL": "1",  # what Prefect's temporary server runs
            "PREFECT_UI_ENABLED": "0",
            # No automations here (alerts are the stack's): their two services build a second
            # API app in-process at start, CPU that a command's first run waited behind.
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
        }
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "ocrflow.cli.localserver_app:create_app",  # Prefect's, with a retry hint on 503
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    with (home / "server.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and Prefect's app
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command; stopped by `ocrflow stop`
        )
    record_pid(home, "server", process.pid)  # beside the runners still recorded
    write_stack_file(home, api_url, {})
    return LocalServer(api_url, process)


def any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
