"""The parent flow: fetch, decode, process and store the results of many jobs.

Takes job ids, or every unfinished job in the ledger when none are given. Looks at each job
once, in batches, and settles the ones already done a batch at a time (decode, process by
type, store: a few task runs per batch); polls the others one by one (Prefect retries the
status check until the job is done or the deadline passes) and stores each once. A job that
ends NotExist or Error is resubmitted from the ledger's original image (a bounded number of
times, the new job linked to the old) and polled in the same run. One job's failure never
stops the others. The run ends Failed when any job failed for good, with the counts in its
message, and leaves a table of every job's outcome, a markdown summary, a progress artifact
and an event per job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prefect import flow, states
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from ocrflow.dbretry import end_of_run_budget, retry_transient
from ocrflow.errors import InvalidJobIdError
from ocrflow.flows.alerts import alert_failed_run, job_lines, watch_service
from ocrflow.flows.reports import (
    NOTHING_TO_DO,
    FetchSummary,
    JobReport,
    Outcome,
    Progress,
    publish_fetch_artifacts,
)
from ocrflow.flows.settle_many import Sweep
from ocrflow.ids import validate_job_id
from ocrflow.interrupt import Interrupted, cancel_on_signals
from ocrflow.leases import LeaseKeeper, claim_for_run
from ocrflow.ledger import Lease
from ocrflow.redact import mask_credentials
from ocrflow.runtime import Runtime, open_runtime
from ocrflow.tasks.credentials import load_settings
from ocrflow.tasks.submission import close_interrupted_submissions


@flow(name="fetch-results", log_prints=False)
async def fetch_results(
    job_ids: list[str] | None = None,
    window: int | None = None,
    max_resubmissions: int | None = None,
    limit: int | None = None,
) -> State[Any]:
    """Settle the given jobs (or every unfinished one) and store their results once.

    ``limit``: a sweep (no ids) leases at most this many unfinished jobs: one shard of a
    sharded sweep. A sweep takes the jobs whose results the service drops soonest first (the
    oldest), and those already past its 24 h retention last.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, not {limit}")
    settings = await load_settings()
    if window is not None:
        settings.window = window
    if max_resubmissions is not None:
        settings.max_resubmissions = max_resubmissions
    async with open_runtime(settings) as runtime:
        try:
            async with cancel_on_signals(), watch_service(runtime), runtime.client.token_ahead():
                summary = await settle_jobs(runtime, job_ids, limit=limit)
        except Interrupted as exc:  # what was done stands; the rest waits for the next run
            message = (
                f"{exc}: {runtime.settled} job(s) settled; the others stay unfinished, their "
                "leases given back; `ocrflow fetch` (or the next sweep) resumes"
            )
            get_run_logger().warning(message)
            return states.Cancelled(message=message)
    await publish_fetch_artifacts(summary)
    get_run_logger().info("fetch finished: %s", summary.headline())
    if summary.failures:
        alert_failed_run(summary.headline(), job_lines(summary.failures))
        return states.Failed(message=summary.headline(), data=summary)
    if not summary.reports:  # an empty sweep reads as such in the runs list, not as work done
        return states.Completed(message=summary.headline(), data=summary, name=NOTHING_TO_DO)
    return states.Completed(message=summary.headline(), data=summary)


async def settle_jobs(
    runtime: Runtime, job_ids: list[str] | None, *, limit: int | None = None
) -> FetchSummary:
    """Settle jobs in batches; reports come back in the order of the ids.

    Each batch gets one look (one GET per job, one task run for all): the jobs found done are
    decoded, processed and stored together, a handful of task runs for the whole batch. Jobs
    not done yet, failed or not found go on alone (their own status check with Prefect's
    retries, resubmission), at most ``window`` at once.
    """
    # Every job this run settles is leased to it first, so that no other live run (a sweep, a
    # shard, another fetch) fetches it at the same time.
    async with _leased(runtime, job_ids, limit) as (leased, elsewhere, others):
        requested = leased if job_ids is None else job_ids
        summary = await _settle(runtime, requested, elsewhere, sweeping=job_ids is None)
    if job_ids is None and others:  # say so, rather than "0 jobs" while others hold them
        until = max(lease.expires_at for lease in others)
        held = sum(lease.jobs for lease in others)
        summary.held_elsewhere = (
            f"{held} unfinished job(s) leased by {len(others)} other run(s) until "
            f"{until:%H:%M:%S} UTC"
        )
    return summary


@asynccontextmanager
async def _leased(
    runtime: Runtime, job_ids: list[str] | None, limit: int | None
) -> AsyncIterator[tuple[list[str], set[str], list[Lease]]]:
    """Jobs leased to this run, kept leased (renewed) while it runs, then given back; a run
    that dies leaves leases that expire, and the next sweep takes over.

    Without ids, the unfinished jobs no live run holds (``limit`` at most); with ids, those of
    them the ledger has unfinished. Yields (the jobs leased, the ids another live run holds,
    the live leases of other runs). Giving the leases back is retried briefly; should the
    ledger stay away, they expire by themselves and the run keeps its summary.
    """
    ledger, lease_s = runtime.ledger, runtime.settings.claim_lease_s
    claim = claim_for_run(flow_run.get_id())
    elsewhere: set[str] = set()
    if job_ids is None:
        leased = await ledger.claim_unfinished(claim, lease_s=lease_s, limit=limit)
    else:
        valid = [job_id for job_id in job_ids if _is_job_id(job_id)]  # the rest are reported
        leased, held = await ledger.claim_jobs(claim, valid, lease_s=lease_s)
        elsewhere = set(held)
    logger = get_run_logger()
    logger.info("leased %d unfinished job(s) as %s", len(leased), claim)
    runtime.fence = await ledger.fence(claim)
    loop = asyncio.get_running_loop()
    keeper = LeaseKeeper(
        runtime.settings.ledger_url,
        claim,
        lease_s,
        logger.warning,
        fence=runtime.fence,
        on_lost=lambda _lost: loop.call_soon_threadsafe(runtime.lease_lost.set),
    )
    others = [
        lease
        for lease in await ledger.leases()
        if lease.claim != claim and not lease.expired(runtime.clock.now())
    ]
    try:
        with keeper:
            yield leased, elsewhere, others
    finally:
        try:
            await retry_transient(
                lambda: ledger.release_claim(claim),
                budget_s=end_of_run_budget(runtime.settings.ledger_retry_s),
            )
        except Exception as exc:  # the summary stands; the leases run out by themselves
            logger.warning(
                "could not give back the lease of %s (%s): its jobs are free again once it "
                "expires, within %.0f s",
                claim,
                mask_credentials(f"{type(exc).__name__}: {exc}"),
                lease_s,
            )


def _is_job_id(raw: str) -> bool:
    try:
        validate_job_id(raw)
    except InvalidJobIdError:
        return False
    return True


async def _settle(
    runtime: Runtime, requested: list[str], elsewhere: set[str], *, sweeping: bool
) -> FetchSummary:
    """Check the ids, then settle the valid ones, each once; ``elsewhere``: ids another live
    run holds, reported and left to it. A sweep also reports interrupted submissions."""
    decided: dict[int, JobReport] = {}
    valid: dict[int, str] = {}
    seen: set[str] = set()
    for index, raw in enumerate(requested):
        try:
            job_id = validate_job_id(raw)
        except InvalidJobIdError as exc:
            decided[index] = JobReport(
                job_id=str(raw)[:80], outcome=Outcome.INVALID, known=False, message=str(exc)
            )
            continue
        if job_id in seen:  # settled once; a second report would only repeat the first
            continue
        seen.add(job_id)
        if job_id in elsewhere:
            decided[index] = JobReport(
                job_id=job_id,
                outcome=Outcome.ELSEWHERE,
                final_job_id=job_id,
                message="another live run holds this job's lease and settles it: not fetched twice",
            )
            continue
        valid[index] = job_id
    if sweeping:  # a run that stopped mid-submission left these: reported once, by one sweep
        for stale in await close_interrupted_submissions(runtime):
            decided[len(requested) + len(decided)] = JobReport(
                job_id=stale.id,
                outcome=Outcome.UNRECORDED,
                known=False,
                message=f"submission {stale.id}: {stale.error}",
            )
    sweep = Sweep(runtime, Progress(len(valid) + len(decided)))
    sweep.progress.start()
    for index, report in decided.items():
        await sweep.finish(index, report)
    await sweep.run(valid)
    await sweep.progress.close()
    return FetchSummary(reports=[sweep.reports[i] for i in sorted(sweep.reports)])


if __name__ == "__main__":
    asyncio.run(fetch_results())
