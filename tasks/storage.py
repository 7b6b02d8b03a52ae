"""Storing: results into the ledger (once per job), payloads to files, final job states."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prefect import task

from ocrflow.adaptive import estimate_from_polls, job_class
from ocrflow.ledger import JobRecord, JobState, NewResult
from ocrflow.processing import ProcessedEntry, ResultKind
from ocrflow.storage import write_payload
from tasks.options import NOT_CACHED
from tasks.runtime import current_runtime


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing a job did."""

    written: bool  # False when the job had been stored before: nothing was written again
    entries: int
    failed_entries: int


@task(
    name="store-results",
    task_run_name="store-{job_id}",
    **NOT_CACHED,
)
async def store_results(
    job_id: str,
    entries: list[ProcessedEntry],
    region_names: list[str | None],
    submitted: JobRecord | None = None,
) -> Stored:
    """Write payload files, then every entry and the job's stored state in one transaction.

    With the job's ledger record, its processing time is estimated from its polls, stored,
    and learned by the polling policy for the jobs of its class.
    """
    runtime = current_runtime()
    processing_s = None
    polls = runtime.poll_log.pop(job_id, [])
    if submitted is not None:
        processing_s = estimate_from_polls(submitted.created_at.timestamp(), polls)
        if processing_s is not None:
            key = job_class(submitted.image_bytes or 0, len(submitted.regions))
            runtime.model.observe(key, processing_s)
    rows = []
    for entry in entries:
        path = None
        if entry.payload is not None and entry.kind in (ResultKind.PDF, ResultKind.OTHER):
            file = await asyncio.to_thread(
                write_payload,
                runtime.results_dir,
                job_id,
                entry.index,
                entry.kind.value,
                entry.payload,
            )
            path = str(file)
        name = (
            region_names[entry.region]
            if entry.region is not None and entry.region < len(region_names)
            else None
        )
        rows.append(NewResult.from_entry(entry, region_name=name, file_path=path))
    written = await runtime.ledger.store_results(
        job_id, rows, polls=runtime.polls.pop(job_id, 0), processing_s=processing_s
    )
    return Stored(written, len(rows), sum(1 for r in rows if r.error))


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
) -> bool:
    """Move a job to a final state in the ledger; False when it was final already."""
    runtime = current_runtime()
    return await runtime.ledger.finish(
        job_id,
        state,
        last_status=last_status,
        error=error,
        polls=runtime.polls.pop(job_id, 0),
        replaced_by=replaced_by,
    )
