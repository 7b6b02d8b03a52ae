"""Storing: a batch of settled jobs into the ledger (once per job), final job states."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from ocrflow.dbretry import end_of_run_budget, retry_transient
from ocrflow.ledger import JobState
from ocrflow.runtime import Runtime
from ocrflow.storing import Stored, StoreRequest, store_batch
from ocrflow.tasks.credentials import given_or_own
from ocrflow.tasks.options import NOT_CACHED

__all__ = ["StoreRequest", "Stored", "record_error", "record_outcome", "store_results"]


@task(
    name="store-results",
    task_run_name="store-{label}",
    **NOT_CACHED,
)
async def store_results(
    label: str, requests: list[StoreRequest], runtime: Runtime | None = None
) -> dict[str, Stored]:
    """Store each complete job of the batch, once (:func:`ocrflow.storing.store_batch`)."""
    async with given_or_own(runtime) as run:
        return await store_batch(run, label, requests, get_run_logger())


@task(
    name="record-outcome",
    task_run_name="record-{job_id}",
    **NOT_CACHED,
)
async def record_outcome(
    job_id: str,
    state: JobState,
    *,
    error: str | None,
    last_status: str | None = None,
    replaced_by: str | None = None,
    runtime: Runtime | None = None,
) -> bool:
    """Move a job to a final state in the ledger; False when it was final already."""
    async with given_or_own(runtime) as run:
        return await run.ledger.finish(
            job_id,
            state,
            last_status=last_status,
            error=error,
            polls=run.polls.pop(job_id, 0),
            replaced_by=replaced_by,
            fence=run.fence,
        )


@task(
    name="record-error",
    task_run_name="record-error-{job_id}",
    **NOT_CACHED,
)
async def record_error(job_id: str, error: str, runtime: Runtime | None = None) -> None:
    """Keep why an unfinished job could not be settled in this run (it stays unfinished)."""
    async with given_or_own(runtime) as run:
        polls = run.polls.pop(job_id, 0)
        # A ledger that stumbled (the reason this job could not be stored, often) may be back.
        await retry_transient(
            lambda: run.ledger.note_error(job_id, error, polls=polls),
            budget_s=end_of_run_budget(run.settings.ledger_retry_s),
        )
