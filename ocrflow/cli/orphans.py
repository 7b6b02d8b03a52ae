"""Flow runs whose process is gone: found when a command or the stack starts, marked Crashed.

A run shows Pending or Running for as long as nobody tells the server otherwise. A command
killed with SIGKILL, or whose Prefect API went away before its last state was sent, leaves
one such run behind; so does a worker stopped while handing a run over, and a deployment's run
left so holds the deployment's only concurrency slot: the schedule then stops, silently.

Each run a command starts is labelled with its host and process (``ocrflow.process``, set
when it starts running; a label, not a tag: Prefect asks its API for a concurrency slot per
tag at every task run). The next command on that host marks Crashed the runs whose process
is no longer alive, and their subflow runs. The stack, when it starts or stops (no worker of
its own alive then), also marks Crashed its deployments' runs left Pending, Running or
Cancelling. Prefect releases a run's concurrency slot when it leaves those states.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, State
    from prefect.flows import FlowStateHook

F = TypeVar("F", bound="Flow[Any, Any]")
PROCESS_LABEL = "ocrflow.process"
UNFINISHED = ("PENDING", "RUNNING", "CANCELLING")


def this_process(host: str | None = None, pid: int | None = None) -> str:
    """Where a run of this process runs: ``host:pid``."""
    return f"{host or _host()}:{pid or os.getpid()}"


def labelled(flow: F) -> F:
    """``flow``, its runs labelled with this process once they start running."""
    hooks: list[FlowStateHook[Any, Any]] = [*flow.on_running_hooks, _label_with_this_process]
    return flow.with_options(on_running=hooks)  # type: ignore[return-value]


async def _label_with_this_process(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - slow to load

    async with get_client() as client:
        await client.update_flow_run_labels(flow_run.id, {PROCESS_LABEL: this_process()})


@dataclass(frozen=True, slots=True)
class UnfinishedRun:
    """What the decision needs of a flow run left Pending, Running or Cancelling."""

    id: UUID
    name: str
    process: str | None  # its PROCESS_LABEL: host:pid
    deployment_id: UUID | None
    parent_ended: bool = False  # a subflow run whose parent's run has ended


def orphan_reason(
    run: UnfinishedRun,
    *,
    host: str,
    alive: Callable[[int], bool],
    worker_gone: bool,
) -> str | None:
    """Why ``run`` can no longer end by itself, or None when it may still (or nobody here can
    tell). ``worker_gone``: no worker of this stack is alive (it is starting or stopping)."""
    if run.process is not None:
        where, _, pid_text = run.process.rpartition(":")
        if where != host or not pid_text.isdigit():
            return None  # another machine's process: only it, or its own host, can tell
        if alive(int(pid_text)):
            return None
        return f"the process that ran it ({where}, pid {pid_text}) is gone"
    if run.parent_ended:
        return "the run it belongs to has ended"
    if run.deployment_id is not None and worker_gone:
        return "the stack's worker stopped before the run ended"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


async def crash_orphans_quietly() -> None:
    """:func:`crash_orphaned_runs` before a command's run; a failure is logged, never in the
    way of the command's own work."""
    log = logging.getLogger(__name__)
    try:
        crashed = await crash_orphaned_runs(ledger_url=_ledger_url())
    except Exception as exc:
        log.debug("no clean-up of orphaned runs: %s", exc)
    else:
        if crashed:
            log.info("marked crashed (their process is gone): %s", ", ".join(crashed))


async def crash_orphaned_runs(
    *,
    worker_gone: bool = False,
    api_url: str | None = None,
    ledger_url: str | None = None,
    limit: int = 200,
) -> list[str]:
    """Mark Crashed the unfinished runs whose process or worker is gone, then those of their
    subflow runs left unfinished; their names. ``api_url``: that server, not the
    environment's. With ``ledger_url``, the jobs those runs had leased are given back, so the
    next sweep settles them now rather than once the leases run out (their epoch still fences
    off a run that would somehow go on)."""
    from prefect.client.orchestration import PrefectClient, get_client  # noqa: PLC0415

    crashed: dict[str, str] = {}
    async with PrefectClient(api_url) if api_url else get_client() as client:
        for _ in range(3):  # the runs, then their subflows (a pipeline's), bounded
            found = 0
            for run in await _unfinished(client, limit):
                why = orphan_reason(run, host=_host(), alive=pid_alive, worker_gone=worker_gone)
                if why is not None:
                    await _crash(client, run.id, why)
                    crashed[str(run.id)] = run.name
                    found += 1
            if not found:
                break
    if crashed and ledger_url:
        await release_leases_of(ledger_url, set(crashed))
    return list(crashed.values())


async def release_leases_of(ledger_url: str, run_ids: set[str]) -> int:
    """Give back the jobs leased by the flow runs ``run_ids``; how many claims were given."""
    from ocrflow.leases import release_runs  # noqa: PLC0415
    from ocrflow.ledger import Ledger  # noqa: PLC0415

    async with Ledger.connect(ledger_url) as ledger:
        return await release_runs(ledger, run_ids)


def _ledger_url() -> str | None:
    """The ledger of this command's settings (None when they do not read)."""
    from ocrflow.settings import OcrflowSettings  # noqa: PLC0415

    try:
        return OcrflowSettings().ledger_url
    except ValueError:  # a bad setting was said already, by the command
        return None


async def _crash(client: PrefectClient, run_id: UUID, why: str) -> None:
    from prefect.states import Crashed  # noqa: PLC0415

    await client.set_flow_run_state(
        run_id, Crashed(message=f"marked crashed by ocrflow: {why}"), force=True
    )


async def _unfinished(client: PrefectClient, limit: int) -> list[UnfinishedRun]:
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType  # noqa: PLC0415

    types = FlowRunFilterStateType(any_=[StateType(name) for name in UNFINISHED])
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=types)), limit=limit
    )
    found = []
    for run in runs:
        label = run.labels.get(PROCESS_LABEL)
        found.append(
            UnfinishedRun(
                id=run.id,
                name=run.name,
                process=label if isinstance(label, str) else None,
                deployment_id=run.deployment_id,
                parent_ended=await _parent_ended(client, run),
            )
        )
    return found


async def _parent_ended(client: PrefectClient, run: FlowRun) -> bool:
    """Whether ``run`` is a subflow run whose parent's run is in a final state."""
    if run.parent_task_run_id is None:
        return False
    task_run = await client.read_task_run(run.parent_task_run_id)
    if task_run.flow_run_id is None:
        return False
    parent = await client.read_flow_run(task_run.flow_run_id)
    return parent.state is not None and parent.state.is_final()


def _host() -> str:
    return socket.gethostname()
