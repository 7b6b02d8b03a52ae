"""A process kept beside the local Prefect server that runs `ocrflow recognize` in-process, so
that a command is one local call: it imports neither Prefect nor SQLAlchemy, and it does not
wait for its run's events and logs to be delivered before the terminal gets its prompt back.

Measured on a 2-core machine (docs/performance.md): of a warm `recognize` in its own process
(6 s), 1.3 s was importing Prefect, 0.4 s the ledger's imports and 0.8 s delivering events at
exit. The runner is started with the local server by the first command that uses it and
outlives it, like the server; it serves 127.0.0.1 only and answers only a request that carries
its token (written owner-only beside its pid). A runner is tied to what it was started with:
the working folder, the interpreter, the ``OCRFLOW_*``/``ASPOSE_*``/``PREFECT_*`` settings and
the code on disk; a command with any of them different gets a runner of its own (a changed
setting is never silently ignored). `ocrflow status` lists runners, `ocrflow stop` stops them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ocrflow.cli.errors import UserError
from ocrflow.cli.orphans import pid_alive
from ocrflow.cli.stackfile import (
    port_free,
    read_record,
    record_pid,
    recorded_pids,
    wait_until_answering,
    write_private_record,
)

if TYPE_CHECKING:
    from ocrflow.jobspec import JobSpec

SETTINGS_PREFIXES = ("OCRFLOW_", "ASPOSE_", "PREFECT_")
NOT_LOADED_BY_A_RUN = {"emulator", "__pycache__"}  # folders of the ocrflow package
STARTUP_S = 120.0
TOKEN_HEADER = "X-Ocrflow-Runner-Token"  # noqa: S105 - a header name


def fingerprint() -> str:
    """What a runner is tied to: the folder, the interpreter, the settings in the environment
    and the code on disk (its files' sizes and times: an edited module means a new runner)."""
    settings = sorted((k, v) for k, v in os.environ.items() if k.startswith(SETTINGS_PREFIXES))
    root = Path(__file__).resolve().parents[1]  # the ocrflow package
    code = []
    # Following links: ocrflow/flows and ocrflow/tasks link to the project's flows/ and tasks/.
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_LOADED_BY_A_RUN)
        for name in sorted(f for f in files if f.endswith(".py")):
            stat = (Path(folder) / name).stat()
            code.append((str(Path(folder) / name), stat.st_mtime_ns, stat.st_size))
    seen = json.dumps([os.getcwd(), sys.executable, settings, code])
    return hashlib.sha256(seen.encode()).hexdigest()[:12]


@dataclass
class Runner:
    """A runner a command talks to: kept from an earlier command, or being started by it."""

    name: str
    url: str
    token: str
    pid: int
    log: Path
    started: bool = False  # by this command

    def ready(self) -> None:
        """Wait until it answers (a bounded wait)."""
        wait_until_answering(
            f"{self.url}/health",
            "ocrflow's background runner",
            alive=lambda: pid_alive(self.pid),
            log=self.log,
            timeout_s=STARTUP_S,
        )

    def recognize(self, specs: list[JobSpec], width: int, color: bool) -> dict[str, Any]:
        """Run `recognize` there; what it printed (``stdout``, ``stderr``) and its exit code."""
        body = {
            "specs": [spec.model_dump(mode="json") for spec in specs],
            "width": width,
            "color": color,
        }
        try:
            answer = httpx.post(
                f"{self.url}/recognize",
                json=body,
                headers={TOKEN_HEADER: self.token},
                timeout=httpx.Timeout(10.0, read=None),  # a run takes as long as its jobs
            )
        except httpx.HTTPError as exc:
            raise UserError(
                f"ocrflow's background runner stopped answering ({type(exc).__name__}; see "
                f"{self.log}): the jobs sent are in the ledger, `ocrflow fetch` settles them"
            ) from None
        if answer.status_code != 200:
            raise UserError(
                f"ocrflow's background runner answered {answer.status_code}: {answer.text}"
            )
        found: dict[str, Any] = answer.json()
        return found


def use_runner(home: Path) -> Runner:
    """The runner of this command's fingerprint in ``home``: the one kept, else one started
    now (in the background: it imports while the local server boots)."""
    import fcntl  # noqa: PLC0415

    name = f"runner-{fingerprint()}"
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once start one runner, not two
        record = read_record(home / f"{name}.json")
        url, token = record.get("url"), record.get("token")
        pid = recorded_pids(home).get(name)
        kept = isinstance(url, str) and isinstance(token, str)
        if kept and pid is not None and pid_alive(pid) and _is_runner(pid):
            return Runner(name, str(url), str(token), pid, home / f"{name}.log")
        return _start(home, name)


def _is_runner(pid: int) -> bool:
    """Whether ``pid`` is a runner still (not a later process given the same number)."""
    try:
        return b"ocrflow.cli.runner" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no /proc to ask: trust the record


def _start(home: Path, name: str) -> Runner:
    from ocrflow.cli.localserver import any_free_port  # noqa: PLC0415

    port = any_free_port()
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "OCRFLOW_RUNNER_PORT": str(port), "OCRFLOW_RUNNER_TOKEN": token}
    log = home / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocrflow.cli.runner"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command; stopped by `ocrflow stop`
        )
    write_private_record(home / f"{name}.json", {"url": f"http://127.0.0.1:{port}", "token": token})
    record_pid(home, name, process.pid)
    return Runner(name, f"http://127.0.0.1:{port}", token, process.pid, log, started=True)


def serve() -> None:
    """The runner itself (``python -m ocrflow.cli.runner``): load what a run needs, wait for
    the Prefect server, then answer on 127.0.0.1 until stopped."""
    port = int(os.environ.pop("OCRFLOW_RUNNER_PORT"))
    token = os.environ.pop("OCRFLOW_RUNNER_TOKEN")
    from ocrflow.cli.localserver import HOME  # noqa: PLC0415
    from ocrflow.cli.main import quiet_prefect  # noqa: PLC0415

    quiet_prefect(verbose=False)  # before Prefect loads: it reads its settings once
    import uvicorn  # noqa: PLC0415

    from ocrflow.cli.runner_app import create_runner_app  # noqa: PLC0415 - loads Prefect

    wait_until_answering(  # its health, not its process: another command started it
        f"{os.environ['PREFECT_API_URL']}/health",
        "the Prefect server",
        alive=lambda: True,
        log=HOME / "server.log",
        timeout_s=STARTUP_S,
    )
    if not port_free(port):
        raise SystemExit(f"port {port} was taken meanwhile")
    uvicorn.run(
        create_runner_app(token), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )


if __name__ == "__main__":
    serve()
