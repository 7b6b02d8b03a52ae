"""What an alert says: one event per failed top-level run, with a link and each job's reason;
one event when the service has been away for ``OCRFLOW_ALERT_UNREACHABLE_S`` while a run
keeps retrying it.

Prefect's own `prefect.flow-run.Failed` fires for every run that fails: a failed pipeline sent
two alerts (its fetch subflow's and its own), neither with a link nor a reason per job. The
flows emit ``ocrflow.run.failed`` instead, from the top-level run only, and the automation
(`ocrflow setup-alerts`) sends its text as it is. A crash (the process died: no flow code left
to run) still alerts on Prefect's own `prefect.flow-run.Crashed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from prefect.events import emit_event
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.settings import get_current_settings

from ocrflow.flows.reports import JobReport
from ocrflow.redact import mask_credentials, printable
from ocrflow.runtime import Runtime

RUN_FAILED = "ocrflow.run.failed"
SERVICE_UNREACHABLE = "ocrflow.service.unreachable"
MAX_LINES = 20  # a webhook body stays readable; the run's artifacts list every job


def run_url(run_id: str) -> str | None:
    """The run's page in the Prefect UI, when the UI's address is known."""
    settings = get_current_settings()
    base = settings.ui_url or (settings.api.url.removesuffix("/api") if settings.api.url else None)
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base else None


def job_lines(failures: Sequence[JobReport]) -> list[str]:
    """One line per failed job: its id, how it ended and why."""
    return [
        f"job {report.job_id} {report.outcome.value}: "
        + printable(mask_credentials(report.message), keep_newlines=False)[:300]
        for report in failures
    ]


def failure_text(headline: str, lines: Sequence[str], url: str | None) -> str:
    """The alert's body: what failed, the reasons (the first ones), where to look."""
    text = [f"ocrflow run {flow_run.get_name() or ''} failed: {headline}"]
    text += [f"- {line}" for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        text.append(f"- … and {len(lines) - MAX_LINES} more (the run's artifacts list them)")
    if url:
        text.append(f"run: {url}")
    return "\n".join(text)


def alert_failed_run(headline: str, lines: Sequence[str]) -> None:
    """Emit ``ocrflow.run.failed`` for this run, unless it is a subflow run (its parent's
    run reports it, once)."""
    if flow_run.get_parent_flow_run_id() is not None:
        return
    run_id = flow_run.get_id()
    if run_id is None:
        return
    url = run_url(run_id)
    emit_event(
        event=RUN_FAILED,
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.name": flow_run.get_name() or run_id,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{flow_run.get_flow_name()}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow_run.get_flow_name() or "",
            }
        ],
        payload={
            "headline": headline,
            "url": url,
            "reasons": len(lines),
            "text": failure_text(headline, lines, url),
        },
    )


@asynccontextmanager
async def watch_service(runtime: Runtime) -> AsyncIterator[None]:
    """While the body runs, look at the service's health now and then; once it has been
    away ``alert_unreachable_s``, emit ``ocrflow.service.unreachable`` (once an outage)."""
    task = asyncio.create_task(_watch(runtime))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _watch(runtime: Runtime) -> None:
    after_s = runtime.settings.alert_unreachable_s
    health = runtime.client.health
    while True:
        await runtime.clock.sleep(min(30.0, max(after_s / 4, 0.5)))
        if health.due_alert(after_s):
            alert_service_unreachable(runtime, health.down_for(), health.last_error or "")


def alert_service_unreachable(runtime: Runtime, down_s: float, last_error: str) -> None:
    """Emit ``ocrflow.service.unreachable`` for this run (and log it as a warning)."""
    where = mask_credentials(runtime.settings.base_url)
    why = printable(mask_credentials(last_error), keep_newlines=False)[:300]
    run_id = flow_run.get_id() or ""
    url = run_url(run_id) if run_id else None
    text = (
        f"ocrflow: the OCR service at {where} has been unreachable for {_duration(down_s)} "
        f"(last: {why}); run {flow_run.get_name() or ''} keeps retrying"
        + (f"\nrun: {url}" if url else "")
    )
    get_run_logger().warning(text)
    emit_event(
        event=SERVICE_UNREACHABLE,
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.name": flow_run.get_name() or run_id,
        },
        payload={"down_s": round(down_s), "last_error": why, "url": url, "text": text},
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
