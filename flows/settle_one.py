"""One job polled to its end: the flow's side of :class:`ocrflow.settling.Settling`.

The machine decides (poll, store, resubmit, end, and why); this module does each step with the
tasks, and places a job's first poll by the learned schedule once its class is warmed up.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ocrflow.adaptive import FirstPoll, plan_first_poll
from ocrflow.errors import IncompleteAnswerError, JobFailedError, JobNotFoundError, JobNotReadyError
from ocrflow.flows.reports import JobReport, Outcome
from ocrflow.ledger import JobRecord, JobState
from ocrflow.lifecycle import JobFacts, remaining_poll_s
from ocrflow.models import OcrResponse
from ocrflow.polling import PollPolicy
from ocrflow.preview import image_name
from ocrflow.runtime import Runtime
from ocrflow.settling import Action, Done, End, Ending, Limits, Poll, Resubmit, Settling, Store
from ocrflow.tasks.status import PollJob, check_on_ticks, configured_check_status
from ocrflow.tasks.storage import record_outcome
from ocrflow.tasks.submission import resubmit_job


@dataclass(frozen=True)
class Checks:
    """The status checks of a run (bound to its runtime): from a job's first poll, and after a
    first look."""

    policy: PollPolicy
    fresh: PollJob
    after_look: PollJob

    @classmethod
    def of(cls, runtime: Runtime, policy: PollPolicy) -> Checks:
        return cls(
            policy,
            configured_check_status(runtime, policy),
            configured_check_status(runtime, policy, polls_done=1),
        )

    def first_wait_s(self) -> float:
        """The wait after a first look that found the job not ready."""
        return self.policy.next_delay(1, elapsed_s=0.0, rand=random.random()) or 0.0  # noqa: S311


@dataclass(frozen=True)
class DoneJob:
    """A job's Completed answer, with the ledger record of the job it settles."""

    response: OcrResponse
    record: JobRecord | None
    original: bool = True  # the record's own job, not a resubmission: its polls date from it


StoreDone = Callable[[str, DoneJob], Awaitable[JobReport]]


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

    Does what :class:`ocrflow.settling.Settling` decides, step by step: poll (the learned
    schedule places the first poll), store (``store`` settles the Completed answer with
    others, in a batch), resubmit, or end the job with the reason. ``looked``: what a first
    look at the job found (not ready, failed, not found, or an incomplete answer), so that it
    is not asked again at once.
    """
    if record is not None and (record.state.is_final or record.resubmission_interrupted):
        return await _settled_by_ledger(runtime, job_id, record)
    key = record.learning_class if record is not None else None
    if record is not None and key is not None:  # while it runs, it tells its class's median
        runtime.follow(job_id, key, record.created_at.timestamp())
    try:
        return await _settle(runtime, checks, job_id, record, store, looked=looked)
    finally:
        runtime.unfollow(job_id)


async def _settle(
    runtime: Runtime,
    checks: Checks,
    job_id: str,
    record: JobRecord | None,
    store: StoreDone,
    *,
    looked: Exception | None,
) -> JobReport:
    """The steps :class:`ocrflow.settling.Settling` decides, until the job's end."""
    settling = Settling(job_id, _facts(record), _limits(runtime), runtime.clock.now)
    line = JobReport(
        job_id=job_id,
        outcome=Outcome.STORED,
        image=image_name(record.source) if record is not None else None,
        known=known(record),
    )
    action = _first_action(settling, looked)
    response: OcrResponse | None = None
    while True:
        line.final_job_id = settling.current
        line.expired = settling.expired
        match action:
            case Poll(job_id=current, wait_s=wait_s, first=first):
                await runtime.clock.sleep(wait_s)
                how = await _next_look(runtime, checks, record, looked) if first else checks.fresh
                looked = None
                try:
                    response = await how(current)
                except JobNotReadyError as exc:
                    action = settling.not_ready_at_deadline(str(exc.status))
                except (JobFailedError, JobNotFoundError) as exc:
                    action = settling.failed(exc)
                else:
                    action = settling.answered()
            case Store(job_id=current, original=original):
                assert response is not None  # noqa: S101 - a Store follows an answer
                report = await store(current, DoneJob(response, record, original=original))
                action = _stored(settling, line, report)
            case Resubmit(job_id=current, reason=reason):
                action = settling.resubmitted(await resubmit_job(current, reason, runtime))
                line.resubmissions = settling.resubmissions
            case End() as end:
                return await _end(runtime, line, end)
            case Done():
                if line.expired:
                    line.message = (
                        f"expired after 24 h, resubmitted as {settling.current}: {line.message}"
                    )
                return line


def _first_action(settling: Settling, looked: Exception | None) -> Action:
    """Where a job starts: from what a first look found, or with its first poll."""
    if isinstance(looked, IncompleteAnswerError):
        return settling.incomplete_at_first_look(str(looked))
    if isinstance(looked, (JobNotReadyError, JobFailedError, JobNotFoundError)):
        return settling.start(looked)
    return settling.start()


def _stored(settling: Settling, line: JobReport, report: JobReport) -> Action:
    """What the store step's report means for the job; a stored job's line takes its counts."""
    if report.outcome is Outcome.INCOMPLETE:
        return settling.stored(incomplete=report.message)
    line.outcome, line.message = report.outcome, report.message
    line.entries, line.failed_entries = report.entries, report.failed_entries
    line.text = report.text
    return settling.stored()


async def _settled_by_ledger(runtime: Runtime, job_id: str, record: JobRecord) -> JobReport:
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
    await record_outcome(job_id, JobState.FAILED, error=message, runtime=runtime)
    return JobReport(job_id=job_id, outcome=Outcome.FAILED, final_job_id=job_id, message=message)


def _facts(record: JobRecord | None) -> JobFacts:
    """What the ledger knows of the job that its decisions need."""
    return JobFacts(
        known=known(record),
        can_resubmit=record is not None and record.can_resubmit,
        submitted_at=record.created_at if record is not None and known(record) else None,
    )


def _limits(runtime: Runtime) -> Limits:
    settings = runtime.settings
    return Limits(
        max_resubmissions=settings.max_resubmissions,
        poll_deadline_s=settings.poll_deadline_s,
        refetch=settings.refetch_policy(),
    )


_OUTCOME_OF = {
    Ending.FAILED: Outcome.FAILED,
    Ending.EXPIRED: Outcome.EXPIRED,
    Ending.TIMED_OUT: Outcome.TIMED_OUT,
    Ending.INCOMPLETE: Outcome.INCOMPLETE,
}


async def _end(runtime: Runtime, line: JobReport, end: End) -> JobReport:
    """Record the job's end in the ledger, with the reason, and say it in its line."""
    line.outcome, line.message = _OUTCOME_OF[end.ending], end.reason
    await record_outcome(
        end.job_id, end.state, error=end.reason, last_status=end.last_status, runtime=runtime
    )
    return line


def due_now(runtime: Runtime, record: JobRecord | None) -> bool:
    """Whether the job's first poll is due now (the learned policy may wait for it)."""
    return not _first_poll(runtime, record, looked=False, fallback_wait_s=0.0).wait_s


def _first_poll(
    runtime: Runtime, record: JobRecord | None, *, looked: bool, fallback_wait_s: float
) -> FirstPoll:
    """The core's plan for the job's first poll in this run (``ocrflow.adaptive``)."""
    key, age_s = None, 0.0
    if record is not None:
        age_s = (runtime.clock.now() - record.created_at).total_seconds()
        key = record.learning_class  # None for an id given by hand: size, regions unknown
    return plan_first_poll(
        runtime.policy,
        runtime.model,
        key,
        age_s=age_s,
        looked=looked,
        fallback_wait_s=fallback_wait_s,
    )


async def _next_look(
    runtime: Runtime, checks: Checks, record: JobRecord | None, looked: Exception | None
) -> PollJob:
    """Wait until the job's first poll is due and return the status check to poll it with.

    Once the job's class has enough completed jobs in the ledger, the learned policy decides:
    a job old enough to be done is polled at once, others on the multiples of the class's lag
    budget in their age. Before that, the capped exponential policy. Either way the polls stop
    at the deadline counted from the job's submission. ``looked``: what a first look found a
    moment ago (the job was not ready), or None.
    """
    remaining_s = remaining_poll_s(
        record.created_at if record is not None else None,
        runtime.settings.poll_deadline_s,
        runtime.clock.now(),
    )
    if remaining_s < checks.policy.deadline_s:  # an old job: fewer polls left
        checks = Checks.of(runtime, replace(checks.policy, deadline_s=max(remaining_s, 1e-3)))
    plan = _first_poll(
        runtime, record, looked=looked is not None, fallback_wait_s=checks.first_wait_s()
    )
    await runtime.clock.sleep(plan.wait_s)
    if plan.tick_s is None or record is None:
        return checks.fresh if looked is None else checks.after_look
    return check_on_ticks(runtime, plan.tick_s, remaining_s, record.created_at.timestamp())


def known(record: JobRecord | None) -> bool:
    """Whether ocrflow submitted the job (an id given by hand is recorded only to lease it)."""
    return record is not None and not record.given_by_id


def region_names(record: JobRecord | None) -> list[str | None]:
    """Region names in ascending order, as the results come back."""
    if record is None:
        return []
    return [r.get("name") for r in sorted(record.regions, key=lambda r: r.get("order", 0))]
