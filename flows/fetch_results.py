"""The parent flow: fetch, decode, process and store the results of many jobs.

Takes job ids, or every unfinished job in the ledger when none are given, and settles each:
polls it (Prefect retries the status check until the job is done or the deadline passes),
decodes and processes every result entry by its type, and stores it once. A job that ends
NotExist or Error is resubmitted from the ledger's original image (a bounded number of times,
the new job linked to the old) and polled in the same run. One job's failure never stops the
others. The run ends Failed when any job failed for good, with the counts in its message, and
leaves a table of every job's outcome, a markdown summary, a progress artifact and an event
per job.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.states import Completed, Failed

from flows.reports import (
    FetchSummary,
    JobReport,
    Outcome,
    Progress,
    emit_job_event,
    publish_fetch_artifacts,
)
from ocrflow.adaptive import job_class
from ocrflow.errors import InvalidJobIdError, JobFailedError, JobNotFoundError, JobNotReadyError
from ocrflow.ids import validate_job_id
from ocrflow.ledger import JobRecord, JobState
from ocrflow.processing import DecodedEntry, ProcessedEntry
from tasks.credentials import load_settings
from tasks.decoding import decode_results
from tasks.processing import PROCESS_TASKS
from tasks.runtime import Runtime, open_runtime
from tasks.status import check_every, configured_check_status
from tasks.storage import record_outcome, store_results
from tasks.submission import resubmit_job


@flow(name="fetch-results", log_prints=False)
async def fetch_results(
    job_ids: list[str] | None = None,
    window: int | None = None,
    max_resubmissions: int | None = None,
) -> State[Any]:
    """Settle the given jobs (or every unfinished one) and store their results once."""
    settings = await load_settings()
    if window is not None:
        settings.window = window
    if max_resubmissions is not None:
        settings.max_resubmissions = max_resubmissions
    async with open_runtime(settings) as runtime:
        summary = await settle_jobs(runtime, job_ids)
    await publish_fetch_artifacts(summary)
    get_run_logger().info("fetch finished: %s", summary.headline())
    if summary.failures:
        return Failed(message=summary.headline(), data=summary)
    return Completed(message=summary.headline(), data=summary)


async def settle_jobs(runtime: Runtime, job_ids: list[str] | None) -> FetchSummary:
    """Settle jobs in a bounded window; reports come back in the order of the ids."""
    requested = job_ids if job_ids is not None else await runtime.ledger.unfinished_job_ids()
    reports: dict[int, JobReport] = {}
    valid: dict[int, str] = {}
    seen: set[str] = set()
    for index, raw in enumerate(requested):
        try:
            job_id = validate_job_id(raw)
        except InvalidJobIdError as exc:
            reports[index] = JobReport(
                job_id=str(raw)[:80], outcome=Outcome.INVALID, known=False, message=str(exc)
            )
            continue
        if job_id in seen:  # settled once; a second report would only repeat the first
            continue
        seen.add(job_id)
        valid[index] = job_id
    records = {r.job_id: r for r in await runtime.ledger.jobs(set(valid.values()))}
    progress = Progress(len(valid) + len(reports))
    await progress.start()
    check = configured_check_status(runtime.settings.poll_policy())
    slots = asyncio.Semaphore(runtime.settings.window)

    async def settle_one(index: int, job_id: str) -> None:
        async with slots:
            try:
                report = await settle_job(runtime, check, job_id, records.get(job_id))
            except Exception as exc:  # one job's trouble never stops the others
                report = JobReport(
                    job_id=job_id, outcome=Outcome.ERROR, message=f"{type(exc).__name__}: {exc}"
                )
        reports[index] = report
        emit_job_event(report)
        await progress.advance(report)

    for report in list(reports.values()):  # the invalid ids are settled already
        await progress.advance(report)
    await asyncio.gather(*(settle_one(index, job_id) for index, job_id in valid.items()))
    return FetchSummary(reports=[reports[i] for i in sorted(reports)])


async def settle_job(
    runtime: Runtime, check: Any, job_id: str, record: JobRecord | None
) -> JobReport:
    """Poll one job to its end, resubmitting it when it fails and the ledger allows."""
    if record is not None and record.state.is_final:
        return JobReport(
            job_id=job_id,
            outcome=Outcome.ALREADY_DONE,
            final_job_id=record.replaced_by or job_id,
            message=f"already {record.state.value} in the ledger: not fetched again",
        )
    limit = runtime.settings.max_resubmissions
    line = JobReport(job_id=job_id, outcome=Outcome.STORED, known=record is not None)
    current = job_id
    poll = await _first_look(runtime, check, record)
    while True:
        line.final_job_id = current
        try:
            response = await poll(current)
        except JobNotReadyError as exc:
            deadline = runtime.settings.poll_deadline_s
            line.message = f"still {exc.status} at the polling deadline ({deadline:.0f} s)"
            line.outcome = Outcome.TIMED_OUT
            await record_outcome(
                current, JobState.TIMED_OUT, error=line.message, last_status=str(exc.status)
            )
            return line
        except (JobFailedError, JobNotFoundError) as exc:
            if record is None:
                why = "the ledger does not know this job, so it cannot be resubmitted"
            elif not record.can_resubmit:
                why = "the ledger keeps no original image to resubmit"
            elif line.resubmissions >= limit:
                why = f"resubmitted {line.resubmissions} time(s), the limit is {limit}"
            else:
                current = await resubmit_job(current, reason=str(exc))
                line.resubmissions += 1
                poll = check
                continue
            line.outcome, line.message = Outcome.FAILED, f"{exc}; {why}"
            status = "Error" if isinstance(exc, JobFailedError) else "NotExist"
            await record_outcome(current, JobState.FAILED, error=line.message, last_status=status)
            return line
        region_count = len(record.regions) if record is not None and record.regions else None
        decoded = await decode_results(current, response, region_count)
        processed = await _process(current, decoded)
        submitted = record if current == job_id else None  # its polls date from its submission
        stored = await store_results(current, processed, _region_names(record), submitted)
        line.outcome = Outcome.STORED if stored.written else Outcome.ALREADY_DONE
        line.entries, line.failed_entries = stored.entries, stored.failed_entries
        line.message = f"{stored.entries - stored.failed_entries} of {stored.entries} entries ok"
        return line


async def _first_look(runtime: Runtime, default: Any, record: JobRecord | None) -> Any:
    """Wait until the job's first poll is due and return the status check to poll it with.

    Once the job's class has enough completed jobs in the ledger, the learned policy decides:
    a job old enough to be done is polled at once, others on the multiples of the class's lag
    budget in their age. Before that, the capped exponential policy, polling at once.
    """
    if record is None:
        return default
    policy = runtime.policy
    key = job_class(record.image_bytes or 0, len(record.regions))
    median, seen = runtime.model.median(key), runtime.model.count(key)
    if median is None or seen < policy.warmup:
        return default
    age_s = (datetime.now(UTC) - record.created_at).total_seconds()
    wait_s = policy.next_delay(
        attempt=0, age_s=age_s, elapsed_s=0.0, median_s=median, observations=seen
    )
    if wait_s:
        await asyncio.sleep(wait_s)
    return check_every(policy.lag_budget(median), runtime.settings.poll_deadline_s)


def _region_names(record: JobRecord | None) -> list[str | None]:
    """Region names in ascending order, as the results come back."""
    if record is None:
        return []
    return [r.get("name") for r in sorted(record.regions, key=lambda r: r.get("order", 0))]


async def _process(job_id: str, decoded: list[DecodedEntry]) -> list[ProcessedEntry]:
    """One processing task per result kind present in the job; entries keep their order."""
    by_kind: dict[Any, list[DecodedEntry]] = {}
    for entry in decoded:
        by_kind.setdefault(entry.kind, []).append(entry)
    processed: list[ProcessedEntry] = []
    for kind, entries in by_kind.items():
        processed += await PROCESS_TASKS[kind](job_id, entries)
    return sorted(processed, key=lambda entry: entry.index)


if __name__ == "__main__":
    asyncio.run(fetch_results())
