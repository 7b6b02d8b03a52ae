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
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from prefect import flow, states
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flows.alerts import alert_failed_run, job_lines, watch_service
from flows.reports import (
    NOTHING_TO_DO,
    FetchSummary,
    JobReport,
    Outcome,
    Progress,
    emit_job_event,
    publish_fetch_artifacts,
)
from ocrflow.adaptive import job_class
from ocrflow.completeness import JobRequest
from ocrflow.dbretry import end_of_run_budget, retry_transient
from ocrflow.errors import (
    IncompleteAnswerError,
    InvalidJobIdError,
    JobFailedError,
    JobNotFoundError,
    JobNotReadyError,
    OcrflowError,
)
from ocrflow.ids import validate_job_id
from ocrflow.interrupt import Interrupted, cancel_on_signals
from ocrflow.leases import LeaseKeeper, claim_for_run
from ocrflow.ledger import JobRecord, JobState, Lease
from ocrflow.lifecycle import (
    Decision,
    JobFacts,
    after_failure,
    nearing_expiry,
    remaining_poll_s,
)
from ocrflow.models import OcrResponse
from ocrflow.outcome import require_completed
from ocrflow.polling import PollPolicy
from ocrflow.preview import image_name, text_preview
from ocrflow.redact import mask_credentials
from tasks.credentials import load_settings
from tasks.decoding import CompletedAnswer, decode_results
from tasks.processing import process_by_kind
from tasks.runtime import Runtime, open_runtime
from tasks.status import check_on_ticks, configured_check_status, first_look
from tasks.storage import StoreRequest, record_error, record_outcome, store_results
from tasks.submission import close_interrupted_submissions, resubmit_job


@flow(name="fetch-results", log_prints=False)
async def fetch_results(
    job_ids: list[str] | None = None,
    window: int | None = None,
    max_resubmissions: int | None = None,
    limit: int | None = None,
) -> State[Any]:
    """Settle the given jobs (or every unfinished one) and store their results once.

    ``limit``: a sweep (no ids) leases at most this many unfinished jobs, oldest first: one
    shard of a sharded sweep.
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
            async with cancel_on_signals(), watch_service(runtime):
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


@dataclass(frozen=True)
class Checks:
    """The status checks of a run: from a job's first poll, and after a first look."""

    policy: PollPolicy
    fresh: Any
    after_look: Any

    @classmethod
    def of(cls, policy: PollPolicy) -> Checks:
        return cls(
            policy,
            configured_check_status(policy),
            configured_check_status(policy, polls_done=1),
        )

    def first_wait_s(self) -> float:
        """The wait after a first look that found the job not ready."""
        return self.policy.next_delay(1, elapsed_s=0.0, rand=random.random()) or 0.0  # noqa: S311


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
        lease for lease in await ledger.leases() if lease.claim != claim and not lease.expired()
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
    records = {r.job_id: r for r in await runtime.ledger.jobs(set(valid.values()))}
    _warn_of_expiry(records.values(), runtime.clock.now())
    if sweeping:  # a run that stopped mid-submission left these: reported once, by one sweep
        for stale in await close_interrupted_submissions():
            decided[len(requested) + len(decided)] = JobReport(
                job_id=stale.id,
                outcome=Outcome.UNRECORDED,
                known=False,
                message=f"submission {stale.id}: {stale.error}",
            )
    sweep = _Sweep(runtime, records, Progress(len(valid) + len(decided)))
    sweep.progress.start()
    for index, report in decided.items():
        await sweep.finish(index, report)
    await sweep.run(valid)
    await sweep.progress.close()
    return FetchSummary(reports=[sweep.reports[i] for i in sorted(sweep.reports)])


def _warn_of_expiry(records: Iterable[JobRecord], now: datetime) -> None:
    """Name the unfinished jobs whose results the service is about to drop (24 h)."""
    soon = [r.job_id for r in records if not r.state.is_final and nearing_expiry(r.created_at, now)]
    if soon:
        get_run_logger().warning(
            "%d unfinished job(s) near or past the service's 24 h retention: %s%s",
            len(soon),
            ", ".join(soon[:10]),
            " …" if len(soon) > 10 else "",
        )


class _Sweep:
    """One run's jobs on their way: batches looked at together, the rest settled alone."""

    def __init__(self, runtime: Runtime, records: dict[str, JobRecord], progress: Progress):
        self.runtime, self.records, self.progress = runtime, records, progress
        settings = runtime.settings
        self.checks = Checks.of(settings.poll_policy())
        self.batch = min(settings.batch, settings.window)
        self.alone_slots = asyncio.Semaphore(settings.window)
        self.batch_slots = asyncio.Semaphore(max(1, settings.window // self.batch))
        # Three batches look at once, so that while they wait on the service the batches looked
        # at before them are decoded and stored: the service's end stays busy throughout
        # (measured in bench/overhead.py: 2 left it idle between waves, 3 does not).
        self.look_slots = asyncio.Semaphore(3)
        self.alone: list[asyncio.Task[None]] = []
        self.open_alone = 0  # jobs settling alone whose report is not in yet
        self.batches_looked = False  # no batch can send more jobs to settle alone
        self.reports: dict[int, JobReport] = {}
        self.collector = _Collector(runtime, self.batch, self.nothing_else_coming)
        self.ledger_failed = False  # a reason could not be written: do not wait on the rest

    async def run(self, valid: dict[int, str]) -> None:
        """Settle every job; should another run take over this run's lease (it stalled past
        it), stop at once and leave the rest to that run."""
        work = asyncio.create_task(self.settle_all(valid))
        lost = asyncio.create_task(self.runtime.lease_lost.wait())
        try:
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # interrupted: nothing of this run goes on behind it
            await self._cancel_all(work, lost)
            raise
        lost.cancel()
        if work.done():
            work.result()
            return
        for task in [work, *self.alone]:
            task.cancel()
        await asyncio.gather(work, *self.alone, return_exceptions=True)
        for index, job_id in valid.items():
            if index not in self.reports:
                self.reports[index] = JobReport(
                    job_id=job_id,
                    outcome=Outcome.ELSEWHERE,
                    final_job_id=job_id,
                    message="another run took over this job's lease (this run stalled past it):"
                    " left to that run, nothing written here",
                )

    async def _cancel_all(self, *tasks: asyncio.Task[Any]) -> None:
        pending = [*tasks, *self.alone, *self.collector.flushing]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def settle_all(self, valid: dict[int, str]) -> None:
        batches: list[list[tuple[int, str]]] = [[]]
        for index, job_id in valid.items():
            record = self.records.get(job_id)
            if _settled_without_a_look(record) or not _due_now(self.runtime, record):
                self.go_alone(index, job_id)  # nothing to look at now (or ever): no batch
                continue
            if len(batches[-1]) == self.batch:
                batches.append([])
            batches[-1].append((index, job_id))
        await asyncio.gather(
            *(self.settle_batch(n, members) for n, members in enumerate(batches, 1) if members)
        )
        self.batches_looked = True
        self.collector.flush_if_complete()
        await asyncio.gather(*self.alone)
        await self.collector.drain()

    async def finish(self, index: int, report: JobReport) -> None:
        self.reports[index] = report
        self.runtime.settled += 1
        if report.outcome is Outcome.ERROR and report.job_id in self.records:
            await self.keep_error(report)
        emit_job_event(report)
        self.progress.advance(report)

    async def keep_error(self, report: JobReport) -> None:
        """Write why a job could not be settled into the ledger; it stays unfinished for a
        rerun. Once the ledger has failed at that, the rest are not tried (each would wait out
        its retries): the run's report carries every reason."""
        if self.ledger_failed:
            return
        try:
            await record_error(report.final_job_id or report.job_id, report.message)
        except Exception as exc:  # the report still carries it; the ledger may be what failed
            self.ledger_failed = True
            get_run_logger().warning(
                "could not keep the error of %s in the ledger (%s): the run's report has it, "
                "and those of the jobs after it",
                report.job_id,
                mask_credentials(str(exc)),
            )

    def go_alone(self, index: int, job_id: str, looked: Exception | None = None) -> None:
        self.open_alone += 1
        self.alone.append(asyncio.create_task(self.settle_alone(index, job_id, looked)))

    def nothing_else_coming(self, waiting: int) -> bool:
        """Whether every job still open waits in the collector: no answer can join them."""
        return self.batches_looked and self.open_alone == waiting

    async def settle_alone(self, index: int, job_id: str, looked: Exception | None) -> None:
        async with self.alone_slots:
            try:
                record = self.records.get(job_id)
                report = await settle_job(
                    self.runtime, self.checks, job_id, record, self.collector.settle, looked=looked
                )
            except Exception as exc:  # one job's trouble never stops the others
                report = _error_report(job_id, exc)
            finally:
                self.open_alone -= 1
                self.collector.flush_if_complete()
        await self.finish(index, report)

    async def settle_batch(self, number: int, members: list[tuple[int, str]]) -> None:
        async with self.batch_slots:
            label = f"batch-{number}-of-{len(members)}-jobs"
            try:
                async with self.look_slots:
                    answers = await first_look(label, [job_id for _, job_id in members])
            except Exception as exc:  # the look itself failed: each job is polled alone
                get_run_logger().warning("first look of %s failed: %s", label, exc)
                answers = {}
            done: dict[str, DoneJob] = {}
            indexes: dict[str, int] = {}
            for index, job_id in members:
                answer = answers.get(job_id)
                if isinstance(answer, OcrResponse):
                    try:
                        require_completed(answer, job_id)
                    except OcrflowError as exc:
                        answer = exc
                    else:
                        done[job_id] = DoneJob(answer, self.records.get(job_id))
                        indexes[job_id] = index
                        continue
                # Not ready, failed or not found: it goes on alone from this answer. Any other
                # trouble (a transient fault the client gave up on) starts its polls afresh.
                known = (JobNotReadyError, JobFailedError, JobNotFoundError)
                self.go_alone(index, job_id, answer if isinstance(answer, known) else None)
            if not done:
                return
            try:
                stored = await settle_completed(self.runtime, label, done)
            except Exception as exc:  # left unfinished in the ledger for the next sweep
                stored = {job_id: _error_report(job_id, exc) for job_id in done}
            for job_id, report in stored.items():
                if report.outcome is Outcome.INCOMPLETE:  # fetched again, alone, after a wait
                    failure = IncompleteAnswerError(report.message, job_id=job_id)
                    self.go_alone(indexes[job_id], job_id, failure)
                    continue
                await self.finish(indexes[job_id], report)


@dataclass(frozen=True)
class DoneJob:
    """A job's Completed answer, with the ledger record of the job it settles."""

    response: OcrResponse
    record: JobRecord | None
    original: bool = True  # the record's own job, not a resubmission: its polls date from it


StoreDone = Callable[[str, DoneJob], Awaitable[JobReport]]


class _Collector:
    """Gathers the Completed answers of jobs polled one by one and settles them in batches:
    when ``batch`` are waiting, or ``linger_s`` after the first, whichever comes first; at once
    when no other job of the run is still being polled (nothing could join them: a lone job
    someone waits for at a terminal does not wait the linger out)."""

    def __init__(
        self,
        runtime: Runtime,
        batch: int,
        complete: Callable[[int], bool] = lambda waiting: False,
        linger_s: float = 0.25,
    ) -> None:
        self.runtime, self.batch, self.linger_s = runtime, batch, linger_s
        self.complete = complete  # given how many wait: are they all the run still has?
        self.waiting: dict[str, tuple[DoneJob, asyncio.Future[JobReport]]] = {}
        self.timer: asyncio.Task[None] | None = None
        self.flushing: set[asyncio.Task[None]] = set()
        self.flushed = 0

    async def settle(self, job_id: str, job: DoneJob) -> JobReport:
        """Queue one job; its report once its batch is stored."""
        future: asyncio.Future[JobReport] = asyncio.get_running_loop().create_future()
        self.waiting[job_id] = (job, future)
        if len(self.waiting) >= self.batch or self.complete(len(self.waiting)):
            self._flush()
        elif self.timer is None:
            self.timer = asyncio.create_task(self._flush_later())
        return await future

    def flush_if_complete(self) -> None:
        """Settle the waiting answers now if no other job can join them any more."""
        if self.waiting and self.complete(len(self.waiting)):
            self._flush()

    async def drain(self) -> None:
        """Wait for every batch under way (the sweep's end)."""
        if self.waiting:
            self._flush()
        while self.flushing:
            await asyncio.gather(*self.flushing)

    async def _flush_later(self) -> None:
        await self.runtime.clock.sleep(self.linger_s)
        self.timer = None
        if self.waiting:
            self._flush()

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.waiting = self.waiting, {}
        self.flushed += 1
        task = asyncio.create_task(
            self._settle(f"polled-{self.flushed}-of-{len(batch)}-jobs", batch)
        )
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def _settle(
        self, label: str, batch: dict[str, tuple[DoneJob, asyncio.Future[JobReport]]]
    ) -> None:
        try:
            done = {job_id: job for job_id, (job, _) in batch.items()}
            reports = await settle_completed(self.runtime, label, done)
        except Exception as exc:  # left unfinished in the ledger for the next sweep
            reports = {job_id: _error_report(job_id, exc) for job_id in batch}
        for job_id, (_, future) in batch.items():
            if not future.done():
                future.set_result(reports[job_id])


async def settle_completed(
    runtime: Runtime, label: str, done: dict[str, DoneJob]
) -> dict[str, JobReport]:
    """Decode, process and store completed jobs: three or four task runs for all of them."""
    answers = {
        job_id: CompletedAnswer(job.response, _region_count(job.record))
        for job_id, job in done.items()
    }
    decoded = await decode_results(label, answers)
    processed = await process_by_kind(label, decoded)
    requests = [
        StoreRequest(
            job_id,
            processed[job_id],
            _region_names(job.record),
            job.record if job.original else None,
            job.record.request if job.record is not None else JobRequest.unknown(),
        )
        for job_id, job in done.items()
    ]
    stored = await store_results(label, requests)
    reports: dict[str, JobReport] = {}
    for job_id, result in stored.items():
        record = done[job_id].record
        if result.fenced:
            reports[job_id] = JobReport(
                job_id=job_id,
                outcome=Outcome.ELSEWHERE,
                final_job_id=job_id,
                message="another run took over this job's lease before its results were "
                "stored here: nothing written by this run",
            )
            continue
        if result.incomplete is not None:
            reports[job_id] = JobReport(
                job_id=job_id,
                outcome=Outcome.INCOMPLETE,
                known=_known(record),
                entries=result.entries,
                message=result.incomplete,
            )
            continue
        if result.error is not None:
            reports[job_id] = JobReport(
                job_id=job_id, outcome=Outcome.ERROR, known=_known(record), message=result.error
            )
            continue
        reports[job_id] = JobReport(
            job_id=job_id,
            outcome=Outcome.STORED if result.written else Outcome.ALREADY_DONE,
            image=image_name(record.source) if record is not None else None,
            text=text_preview(processed[job_id], _region_names(record)),
            final_job_id=job_id,
            known=_known(record),
            entries=result.entries,
            failed_entries=result.failed_entries,
            message=f"{result.entries - result.failed_entries} of {result.entries} entries ok",
        )
    return reports


async def settle_job(
    runtime: Runtime,
    checks: Checks,
    job_id: str,
    record: JobRecord | None,
    store: StoreDone,
    *,
    looked: Exception | None = None,
) -> JobReport:
    """Poll one job to its end, resubmitting it when it fails and the ledger allows.

    ``store`` settles its Completed answer (with others, in a batch). ``looked``: what a first
    look at the job found (not ready, failed, not found, or an incomplete answer), so that it is
    not asked again at once. An incomplete answer is fetched again after the refetch policy's
    wait, a bounded number of times; then the job ends ``incomplete`` with the reason. What
    follows a failure is :func:`ocrflow.lifecycle.after_failure`'s decision.
    """
    if record is not None and (record.state.is_final or record.resubmission_interrupted):
        return await _settled_by_ledger(job_id, record)
    refetch = runtime.settings.refetch_policy()
    line = JobReport(
        job_id=job_id,
        outcome=Outcome.STORED,
        image=image_name(record.source) if record is not None else None,
        known=_known(record),
    )
    current = job_id
    incomplete: str | None = None  # why the latest Completed answer could not be stored
    if isinstance(looked, IncompleteAnswerError):
        incomplete, looked = str(looked), None
    refetches = 0
    while True:
        line.final_job_id = current
        if incomplete is not None:
            refetches += 1
            wait_s = refetch.delay(refetches)
            if wait_s is None:
                why = f"{incomplete} (fetched {refetches} times)"
                return await _end(line, Outcome.INCOMPLETE, why, "Completed")
            await runtime.clock.sleep(wait_s)
        try:
            if isinstance(looked, (JobFailedError, JobNotFoundError)):
                raise looked
            # Done already (one GET), or a resubmitted job: the capped exponential policy.
            again = incomplete is not None or current != job_id
            poll = checks.fresh if again else await _next_look(runtime, checks, record, looked)
            looked = None
            response = await poll(current)
        except JobNotReadyError as exc:
            deadline = runtime.settings.poll_deadline_s
            why = f"still {exc.status} {deadline:.0f} s after its submission (the polling deadline)"
            return await _end(line, Outcome.TIMED_OUT, why, str(exc.status))
        except (JobFailedError, JobNotFoundError) as exc:
            looked = None
            decision = _after_failure(runtime, exc, record, line, original=current == job_id)
            line.expired = line.expired or decision.expired
            status = "Error" if isinstance(exc, JobFailedError) else "NotExist"
            if not decision.resubmit:
                outcome = Outcome.EXPIRED if decision.expired else Outcome.FAILED
                return await _end(line, outcome, decision.reason, status, decision.state)
            current = await resubmit_job(current, reason=decision.reason)
            line.resubmissions += 1
            continue
        report = await store(current, DoneJob(response, record, original=current == job_id))
        if report.outcome is Outcome.INCOMPLETE:
            incomplete = report.message
            continue
        line.outcome, line.message = report.outcome, report.message
        if line.expired:
            line.message = f"expired after 24 h, resubmitted as {current}: {report.message}"
        line.entries, line.failed_entries = report.entries, report.failed_entries
        line.text = report.text
        return line


async def _settled_by_ledger(job_id: str, record: JobRecord) -> JobReport:
    """A job final in the ledger already, or whose resubmission was begun and never recorded
    (it may have reached the service: it is not sent again)."""
    if record.state.is_final:
        return JobReport(
            job_id=job_id,
            outcome=Outcome.ALREADY_DONE,
            final_job_id=record.replaced_by or job_id,
            message=f"already {record.state.value} in the ledger: not fetched again",
        )
    message = (
        f"a resubmission of this job began at {record.resubmitting_since:%Y-%m-%d %H:%M:%S} "
        "UTC and was never recorded (the run stopped); it may have reached the service, "
        "so the image is not sent again"
    )
    await record_outcome(job_id, JobState.FAILED, error=message)
    return JobReport(job_id=job_id, outcome=Outcome.FAILED, final_job_id=job_id, message=message)


def _after_failure(
    runtime: Runtime,
    exc: JobFailedError | JobNotFoundError,
    record: JobRecord | None,
    line: JobReport,
    *,
    original: bool,
) -> Decision:
    """The core's decision for a job that ended Error or NotExist."""
    facts = JobFacts(
        known=_known(record),
        can_resubmit=record is not None and record.can_resubmit,
        # A resubmitted job was sent moments ago: only the original can have expired.
        submitted_at=record.created_at
        if record is not None and _known(record) and original
        else None,
    )
    return after_failure(
        status="Error" if isinstance(exc, JobFailedError) else "NotExist",
        messages=exc.messages if isinstance(exc, JobFailedError) else [],
        detail=str(exc),
        facts=facts,
        resubmissions=line.resubmissions,
        limit=runtime.settings.max_resubmissions,
        now=runtime.clock.now(),
    )


async def _end(
    line: JobReport,
    outcome: Outcome,
    why: str,
    last_status: str,
    state: JobState | None = None,
) -> JobReport:
    """End the job the line has reached in a final state, with the reason, in the ledger too."""
    final = state or {
        Outcome.INCOMPLETE: JobState.INCOMPLETE,
        Outcome.TIMED_OUT: JobState.TIMED_OUT,
    }.get(outcome, JobState.FAILED)
    line.outcome, line.message = outcome, why
    await record_outcome(
        line.final_job_id or line.job_id, final, error=why, last_status=last_status
    )
    return line


def _learned(runtime: Runtime, record: JobRecord | None) -> tuple[float, int] | None:
    """The learned median time and observation count of the job's class, once warmed up."""
    if record is None or record.given_by_id:  # its class (size, regions) is unknown
        return None
    key = job_class(record.image_bytes or 0, len(record.regions))
    median, seen = runtime.model.median(key), runtime.model.count(key)
    if median is None or seen < runtime.policy.warmup:
        return None
    return median, seen


def _due_now(runtime: Runtime, record: JobRecord | None) -> bool:
    """Whether the job's first poll is due now (the learned policy may wait for it)."""
    learned = _learned(runtime, record)
    if learned is None or record is None:
        return True
    age_s = (runtime.clock.now() - record.created_at).total_seconds()
    wait_s = runtime.policy.next_delay(
        attempt=0, age_s=age_s, elapsed_s=0.0, median_s=learned[0], observations=learned[1]
    )
    return not wait_s


async def _next_look(
    runtime: Runtime, checks: Checks, record: JobRecord | None, looked: Exception | None
) -> Any:
    """Wait until the job's next poll is due and return the status check to poll it with.

    Once the job's class has enough completed jobs in the ledger, the learned policy decides:
    a job old enough to be done is polled at once, others on the multiples of the class's lag
    budget in their age. Before that, the capped exponential policy. Either way the polls stop
    at the deadline counted from the job's submission. ``looked``: what a first look found a
    moment ago (the job was not ready), or None.
    """
    polled = looked is not None
    remaining_s = remaining_poll_s(
        record.created_at if record is not None else None,
        runtime.settings.poll_deadline_s,
        runtime.clock.now(),
    )
    if remaining_s < checks.policy.deadline_s:  # an old job: fewer polls left
        checks = Checks.of(replace(checks.policy, deadline_s=max(remaining_s, 1e-3)))
    learned = _learned(runtime, record)
    if learned is None or record is None:
        if not polled:
            return checks.fresh
        await runtime.clock.sleep(checks.first_wait_s())
        return checks.after_look
    median, seen = learned
    policy = runtime.policy
    if not polled:  # the first poll: at once when old enough to be done, else on a tick
        age_s = (runtime.clock.now() - record.created_at).total_seconds()
        wait_s = policy.next_delay(
            attempt=0, age_s=age_s, elapsed_s=0.0, median_s=median, observations=seen
        )
        if wait_s:
            await runtime.clock.sleep(wait_s)
    return check_on_ticks(policy.lag_budget(median), remaining_s, record.created_at.timestamp())


def _settled_without_a_look(record: JobRecord | None) -> bool:
    """Final already, or its resubmission was interrupted: the ledger alone settles it."""
    return record is not None and (record.state.is_final or record.resubmission_interrupted)


def _error_report(job_id: str, exc: Exception) -> JobReport:
    """A job this run could not settle: left unfinished for the next one."""
    return JobReport(job_id=job_id, outcome=Outcome.ERROR, message=f"{type(exc).__name__}: {exc}")


def _known(record: JobRecord | None) -> bool:
    """Whether ocrflow submitted the job (an id given by hand is recorded only to lease it)."""
    return record is not None and not record.given_by_id


def _region_count(record: JobRecord | None) -> int | None:
    return len(record.regions) if record is not None and record.regions else None


def _region_names(record: JobRecord | None) -> list[str | None]:
    """Region names in ascending order, as the results come back."""
    if record is None:
        return []
    return [r.get("name") for r in sorted(record.regions, key=lambda r: r.get("order", 0))]


if __name__ == "__main__":
    asyncio.run(fetch_results())
