"""Many jobs at once: batches looked at together, the rest settled alone, answers collected.

Each batch gets one look (one GET per job, one task run for all); the jobs found done are
decoded, processed and stored together. The others go on alone (:func:`settle_job`) and their
Completed answers are gathered and stored a batch at a time (:class:`Collector`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from prefect.logging import get_run_logger

from ocrflow.completeness import JobRequest
from ocrflow.errors import (
    IncompleteAnswerError,
    JobFailedError,
    JobNotFoundError,
    JobNotReadyError,
    OcrflowError,
)
from ocrflow.flows.reports import JobEvents, JobReport, Outcome, Progress
from ocrflow.flows.settle_one import Checks, DoneJob, due_now, known, region_names, settle_job
from ocrflow.ledger import JobRecord
from ocrflow.lifecycle import nearing_expiry
from ocrflow.models import OcrResponse
from ocrflow.outcome import require_completed
from ocrflow.preview import image_name, text_preview
from ocrflow.redact import mask_credentials
from ocrflow.runtime import Runtime
from ocrflow.tasks.decoding import CompletedAnswer, decode_results
from ocrflow.tasks.processing import process_by_kind
from ocrflow.tasks.status import first_look
from ocrflow.tasks.storage import StoreRequest, record_error, store_results


class Sweep:
    """One run's jobs on their way: batches looked at together, the rest settled alone."""

    def __init__(self, runtime: Runtime, progress: Progress):
        self.runtime, self.progress = runtime, progress
        self.records: dict[str, JobRecord] = {}  # of the jobs loaded and not finished with
        self.progressed = asyncio.Event()  # a job was finished with
        settings = runtime.settings
        self.checks = Checks.of(runtime, settings.poll_policy())
        self.batch = min(settings.batch, settings.window)
        self.alone_slots = asyncio.Semaphore(settings.window)
        self.batch_slots = asyncio.Semaphore(max(1, settings.window // self.batch))
        # Three batches look at once, so that while they wait on the service the batches looked
        # at before them are decoded and stored: the service's end stays busy throughout
        # (measured in bench/overhead.py: 2 left it idle between waves, 3 does not).
        self.look_slots = asyncio.Semaphore(3)
        self.alone: list[asyncio.Task[None]] = []
        self.batches: list[asyncio.Task[None]] = []
        self.open_alone = 0  # jobs settling alone whose report is not in yet
        self.batches_looked = False  # no batch can send more jobs to settle alone
        self.reports: dict[int, JobReport] = {}
        self.events = JobEvents()
        self.collector = Collector(runtime, self.batch, self.nothing_else_coming)
        self.ledger_failed = False  # a reason could not be written: do not wait on the rest

    async def run(self, valid: dict[int, str]) -> None:
        """Settle every job; should another run take over this run's lease (it stalled past
        it), stop at once and leave the rest to that run."""
        try:
            await self._run(valid)
        finally:  # the jobs settled before any interruption are told of too
            self.events.flush()

    async def _run(self, valid: dict[int, str]) -> None:
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
        for task in [work, *self.batches, *self.alone]:
            task.cancel()
        await asyncio.gather(work, *self.batches, *self.alone, return_exceptions=True)
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
        pending = [*tasks, *self.batches, *self.alone, *self.collector.flushing]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def settle_all(self, valid: dict[int, str]) -> None:
        """Load the jobs' ledger records a chunk at a time, in the run's order, and set each
        chunk going (done-looking ones in batches, the rest alone); a chunk is loaded once the
        jobs under way are few enough, so a run holds a few windows of records, not all of them
        (measured: 100,000 records held at once were 400 MB of a sweep's 790 MB)."""
        chunk_size = 2 * max(self.runtime.settings.window, self.batch)
        items = list(valid.items())
        batch: list[tuple[int, str]] = []
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            await self.until_few_under_way(chunk_size)
            await self.load_records([job_id for _, job_id in chunk])
            for index, job_id in chunk:
                record = self.records.get(job_id)
                if settled_without_a_look(record) or not due_now(self.runtime, record):
                    self.go_alone(index, job_id)  # nothing to look at now (or ever): no batch
                    continue
                batch.append((index, job_id))
                if len(batch) == self.batch:
                    self.start_batch(batch)
                    batch = []
        if batch:
            self.start_batch(batch)
        await asyncio.gather(*self.batches)
        self.batches_looked = True
        self.collector.flush_if_complete()
        await asyncio.gather(*self.alone)
        await self.collector.drain()

    async def load_records(self, job_ids: list[str]) -> None:
        """The ledger's records of these jobs, kept until each job is finished with; the ones
        near the service's 24 h retention are named (they come first in a sweep)."""
        loaded = await self.runtime.ledger.jobs(set(job_ids))
        self.records.update((record.job_id, record) for record in loaded)
        warn_of_expiry(loaded, self.runtime.clock.now())

    def start_batch(self, members: list[tuple[int, str]]) -> None:
        self.batches.append(asyncio.create_task(self.settle_batch(len(self.batches) + 1, members)))

    async def until_few_under_way(self, most: int) -> None:
        """Wait until at most ``most`` loaded jobs are still being looked at in batches. (Jobs
        polled alone do not count: a slow one may poll for an hour, and the done jobs behind
        it must not wait for it.)"""
        while len(self.records) - self.open_alone > most:
            self.progressed.clear()
            await self.progressed.wait()

    async def finish(self, index: int, report: JobReport) -> None:
        self.reports[index] = report
        self.runtime.settled += 1
        if report.outcome is Outcome.ERROR and report.job_id in self.records:
            await self.keep_error(report)
        self.records.pop(report.job_id, None)  # finished with: its record is not kept
        self.progressed.set()
        self.events.add(report)
        self.progress.advance(report)

    async def keep_error(self, report: JobReport) -> None:
        """Write why a job could not be settled into the ledger; it stays unfinished for a
        rerun. Once the ledger has failed at that, the rest are not tried (each would wait out
        its retries): the run's report carries every reason."""
        if self.ledger_failed:
            return
        try:
            await record_error(report.final_job_id or report.job_id, report.message, self.runtime)
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
                report = error_report(job_id, exc)
            finally:
                self.open_alone -= 1
                self.collector.flush_if_complete()
        await self.finish(index, report)

    async def settle_batch(self, number: int, members: list[tuple[int, str]]) -> None:
        async with self.batch_slots:
            label = f"batch-{number}-of-{len(members)}-jobs"
            try:
                async with self.look_slots:
                    job_ids = [job_id for _, job_id in members]
                    answers = await first_look(label, job_ids, self.runtime)
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
                stored = {job_id: error_report(job_id, exc) for job_id in done}
            for job_id, report in stored.items():
                if report.outcome is Outcome.INCOMPLETE:  # fetched again, alone, after a wait
                    failure = IncompleteAnswerError(report.message, job_id=job_id)
                    self.go_alone(indexes[job_id], job_id, failure)
                    continue
                await self.finish(indexes[job_id], report)


class Collector:
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
            reports = {job_id: error_report(job_id, exc) for job_id in batch}
        for job_id, (_, future) in batch.items():
            if not future.done():
                future.set_result(reports[job_id])


async def settle_completed(
    runtime: Runtime, label: str, done: dict[str, DoneJob]
) -> dict[str, JobReport]:
    """Decode, process and store completed jobs: three or four task runs for all of them."""
    answers = {
        job_id: CompletedAnswer(job.response, region_count(job.record))
        for job_id, job in done.items()
    }
    decoded = await decode_results(label, answers, runtime.settings.max_result_bytes)
    processed = await process_by_kind(label, decoded)
    requests = [
        StoreRequest(
            job_id,
            processed[job_id],
            region_names(job.record),
            job.record if job.original else None,
            job.record.request if job.record is not None else JobRequest.unknown(),
        )
        for job_id, job in done.items()
    ]
    stored = await store_results(label, requests, runtime)
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
                known=known(record),
                entries=result.entries,
                message=result.incomplete,
            )
            continue
        if result.error is not None:
            reports[job_id] = JobReport(
                job_id=job_id, outcome=Outcome.ERROR, known=known(record), message=result.error
            )
            continue
        reports[job_id] = JobReport(
            job_id=job_id,
            outcome=Outcome.STORED if result.written else Outcome.ALREADY_DONE,
            image=image_name(record.source) if record is not None else None,
            text=text_preview(processed[job_id], region_names(record)),
            final_job_id=job_id,
            known=known(record),
            entries=result.entries,
            failed_entries=result.failed_entries,
            message=f"{result.entries - result.failed_entries} of {result.entries} entries ok",
        )
    return reports


def warn_of_expiry(records: Iterable[JobRecord], now: datetime) -> None:
    """Name the unfinished jobs whose results the service is about to drop (24 h)."""
    soon = [r.job_id for r in records if not r.state.is_final and nearing_expiry(r.created_at, now)]
    if soon:
        get_run_logger().warning(
            "%d unfinished job(s) near or past the service's 24 h retention: %s%s",
            len(soon),
            ", ".join(soon[:10]),
            " …" if len(soon) > 10 else "",
        )


def settled_without_a_look(record: JobRecord | None) -> bool:
    """Final already, or its resubmission was interrupted: the ledger alone settles it."""
    return record is not None and (record.state.is_final or record.resubmission_interrupted)


def error_report(job_id: str, exc: Exception) -> JobReport:
    """A job this run could not settle: left unfinished for the next one."""
    return JobReport(job_id=job_id, outcome=Outcome.ERROR, message=f"{type(exc).__name__}: {exc}")


def region_count(record: JobRecord | None) -> int | None:
    return len(record.regions) if record is not None and record.regions else None
