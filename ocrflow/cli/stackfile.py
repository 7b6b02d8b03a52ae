"""Where a running stack is: written by `ocrflow serve`, read by every command (no Prefect
import here: the commands read it before deciding whether to load Prefect at all).

With the stack up, the command line uses its Prefect server, ledger and results folder, so a
job submitted from a terminal is swept by the stack and `ocrflow results` shows what the
stack's runs stored: one configuration, and no temporary Prefect server per command.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from ocrflow.cli.errors import UserError
from ocrflow.cli.orphans import pid_alive

DEFAULT_HOME = Path("var/stack")  # `serve` and `stop` default to it, from the project's folder
SHARED_SETTINGS = ("OCRFLOW_LEDGER_URL", "OCRFLOW_RESULTS_DIR")  # the stack's, for the CLI too


def write_private_record(path: Path, record: Mapping[str, object]) -> None:
    """Write ``record`` as JSON, readable by its owner only (URLs with passwords, tokens)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(record, indent=2))


def read_record(path: Path) -> dict[str, object]:
    """A JSON object written by :func:`write_private_record` or :func:`record_pid` (empty when
    there is none, or it does not read)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_stack_file(home: Path, api_url: str, env: Mapping[str, str]) -> None:
    """Record the stack's API, ledger and results folder in ``home`` (owner-only: the ledger's
    URL may hold a password)."""
    shared = {name: env[name] for name in SHARED_SETTINGS if name in env}
    write_private_record(home / "stack.json", {"api_url": api_url, **shared})


def read_stack_file(home: Path) -> dict[str, str]:
    """What ``serve`` recorded of the stack in ``home`` (empty when nothing was)."""
    return {k: v for k, v in read_record(home / "stack.json").items() if isinstance(v, str)}


def recorded_pids(home: Path) -> dict[str, int]:
    """The processes ``serve`` (or the local server) recorded in ``home``, by name."""
    found = read_record(home / "pids.json")
    return {name: pid for name, pid in found.items() if isinstance(pid, int)}


def record_pid(home: Path, name: str, pid: int) -> None:
    """Add (or replace) one process in ``home``'s record, keeping the others: the local
    server and its runners start at different times, and each must stay stoppable."""
    (home / "pids.json").write_text(json.dumps({**recorded_pids(home), name: pid}))


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (no wait beyond a 2 s timeout)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_answering(
    url: str, name: str, *, alive: Callable[[], bool], log: Path, timeout_s: float
) -> None:
    """Wait (bounded) until ``url`` answers 200; UserError, naming ``name`` and its ``log``,
    when its process exits meanwhile or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise UserError(f"{name} exited while starting; see {log}")
        if answers(url):
            return
        time.sleep(0.05)
    raise UserError(f"{name} did not answer within {timeout_s:.0f} s")


def alive_pids(home: Path) -> dict[str, int]:
    """Those of the recorded processes that are still alive."""
    return {name: pid for name, pid in recorded_pids(home).items() if pid_alive(pid)}


def running_stack(home: Path = DEFAULT_HOME) -> dict[str, str]:
    """The record of the stack in ``home`` when its server process is alive; else empty."""
    return read_stack_file(home) if "server" in alive_pids(home) else {}


def join_running_stack(home: Path = DEFAULT_HOME) -> str | None:
    """Point this process at the running stack in ``home`` (its Prefect API, ledger and
    results folder), unless PREFECT_API_URL names a server already; what a setting of the
    user's names stays as it is. The API URL joined, or None."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    stack = running_stack(home)
    api_url = stack.get("api_url")
    if not api_url:
        return None
    os.environ["PREFECT_API_URL"] = api_url
    for name in SHARED_SETTINGS:
        if name in stack:
            os.environ.setdefault(name, stack[name])
    return api_url


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
