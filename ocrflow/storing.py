"""Storing a batch of settled jobs: payload files, then every job's rows in one transaction.

What makes a store trustworthy lives here, Prefect-free: nothing incomplete is stored
(:func:`ocrflow.completeness.assess`), a stored job is never written again (the ledger says
``Written.BEFORE``), a job whose lease another run has taken is not written (``FENCED``), one
job that cannot be stored never stops the others, and each stored job's processing time is
estimated from its polls and taught to the learned polling policy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ocrflow.adaptive import estimate_from_polls
from ocrflow.completeness import JobRequest, assess
from ocrflow.dbretry import describe_ledger_error, is_transient_db_error, retry_transient
from ocrflow.ledger import JobRecord, JobResults, NewResult, Written
from ocrflow.processing import ProcessedEntry, ResultKind
from ocrflow.redact import mask_credentials
from ocrflow.runtime import Runtime
from ocrflow.storage import write_payload

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing a job did."""

    written: bool  # False when the job had been stored before: nothing was written again
    entries: int
    failed_entries: int
    error: str | None = None  # the job could not be stored (it stays unfinished for a rerun)
    incomplete: str | None = None  # the answer lacks entries or has unreadable ones: not stored
    fenced: bool = False  # another run holds the job's lease now: nothing written here


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One job's processed entries, its region names, and its ledger record when it has one."""

    job_id: str
    entries: list[ProcessedEntry]
    region_names: list[str | None]
    submitted: JobRecord | None = None  # the record this job was submitted as: its polls count
    request: JobRequest = field(default_factory=JobRequest.unknown)  # what a complete answer holds


async def store_batch(
    runtime: Runtime, label: str, requests: list[StoreRequest], log: Logger
) -> dict[str, Stored]:
    """Store each complete job: payload files first, then every job's entries and stored state.

    A job whose answer is incomplete (:func:`ocrflow.completeness.assess`) is not stored: its
    answer says why. The whole batch goes in one transaction (a database restarting is waited
    out); should that fail, each job is tried alone, so one job that cannot be stored does not
    stop the others (its error is in its answer). Writes check the run's lease (``fence``).
    """
    prepared: dict[str, JobResults] = {}
    stored: dict[str, Stored] = {}
    for request in requests:
        verdict = assess(request.entries, request.request, request.region_names)
        if not verdict.complete:
            stored[request.job_id] = Stored(
                False, len(request.entries), 0, incomplete=verdict.reason()
            )
            continue
        try:
            prepared[request.job_id] = await _prepare(runtime, request)
        except Exception as exc:  # its payload could not be written: the job stays unfinished
            why = mask_credentials(f"{type(exc).__name__}: {exc}")
            stored[request.job_id] = _not_stored(log, request.job_id, f"payload not written: {why}")
    fence, ledger = runtime.fence, runtime.ledger
    try:  # a database restarting is waited out; the batch is one transaction, safe to redo
        written = await retry_transient(
            lambda: ledger.store_many(list(prepared.values()), fence),
            budget_s=runtime.settings.ledger_retry_s,
        )
    except Exception as exc:
        written = {}
        if is_transient_db_error(exc):  # the ledger is away: each job alone would fail alike
            for job_id in prepared:
                stored[job_id] = _not_stored(log, job_id, describe_ledger_error(exc))
            prepared = {}
        else:
            log.warning("storing %s at once failed (%s); one job at a time", label, exc)
        for job_id, job in prepared.items():
            try:
                written |= await ledger.store_many([job], fence)
            except Exception as one_exc:  # stays unfinished in the ledger: the next sweep retries
                stored[job_id] = _not_stored(log, job_id, describe_ledger_error(one_exc))
    for job_id, job in prepared.items():
        if job_id in written:
            failed = sum(1 for row in job.results if row.error)
            done = written[job_id]
            stored[job_id] = Stored(
                done is Written.NOW, len(job.results), failed, fenced=done is Written.FENCED
            )
    return stored


def _not_stored(log: Logger, job_id: str, why: str) -> Stored:
    log.error("could not store job %s: %s", job_id, why)
    return Stored(False, 0, 0, error=why)


async def _prepare(runtime: Runtime, request: StoreRequest) -> JobResults:
    """A job's rows, its payload files written, its polls counted; with its ledger record, its
    processing time is estimated from its polls and learned for the jobs of its class."""
    job_id, submitted, region_names = request.job_id, request.submitted, request.region_names
    processing_s = None
    polls = runtime.poll_log.pop(job_id, [])
    if submitted is not None:
        processing_s = estimate_from_polls(submitted.created_at.timestamp(), polls)
        key = submitted.learning_class
        if processing_s is not None and key is not None:
            runtime.model.observe(key, processing_s, job_id)
    rows = []
    for entry in request.entries:
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
    return JobResults(job_id, rows, runtime.polls.pop(job_id, 0), processing_s)
