"""The status check: one GET of a job, retried by Prefect until the job is done."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.logging import get_run_logger

from ocrflow.adaptive import until_next_tick
from ocrflow.errors import JobNotReadyError, OcrflowError, RateLimitedError, is_transient
from ocrflow.models import OcrResponse
from ocrflow.outcome import require_completed
from ocrflow.polling import PollPolicy
from ocrflow.runtime import Runtime
from ocrflow.tasks.credentials import given_or_own
from ocrflow.tasks.options import NOT_CACHED

DEFAULT_RETRIES, DEFAULT_DELAYS = PollPolicy().retry_schedule()
MAX_INLINE_RETRY_AFTER_S = 300.0
_PREFECT_RETRY_LINE = "Task run failed with %s: %r - Retry %s/%s will start %s"


class NotReadyIsNotAFailure(logging.Filter):
    """Prefect logs every retry as ``Task run failed with exception: … - Retry 1/724``; for a
    poll whose job is only not ready yet (the normal case, many times a job), the same record
    says so instead: ``job … is Processing: not ready yet; look 2 of at most 725 in 0.25 s``.
    Any other failure keeps Prefect's wording."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == _PREFECT_RETRY_LINE and isinstance(args, tuple) and len(args) == 5:
            _, error, retry, retries, when = args
            if isinstance(error, JobNotReadyError) and isinstance(retry, int):
                looks = retries + 1 if isinstance(retries, int) else retries  # the first, too
                record.msg = "%s: not ready yet; look %s of at most %s %s"
                record.args = (str(error), retry + 1, looks, _in(str(when)))
        return True


def _in(when: str) -> str:
    """Prefect's ``0.25 second(s) from now`` as ``in 0.25 s``."""
    seconds = when.removesuffix(" second(s) from now")
    try:
        return f"in {float(seconds):.2f} s"
    except ValueError:  # "immediately", or a wording of a later Prefect
        return when


def quiet_not_ready_retries(logger: logging.Logger | None = None) -> None:
    """Install :class:`NotReadyIsNotAFailure` on Prefect's task-run logger (once)."""
    target = logger or logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, NotReadyIsNotAFailure) for f in target.filters):
        target.addFilter(NotReadyIsNotAFailure())


quiet_not_ready_retries()

PollJob = Callable[[str], Awaitable[OcrResponse]]  # a job id → its Completed answer


async def retry_when_worth_it(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Poll again when the job is not ready yet, or when a transient fault outlasted the
    client's own retries (the poll layer of :mod:`ocrflow.client`'s table); stop on anything
    else."""
    try:
        await state.aresult()  # re-raises the task's exception
    except JobNotReadyError:
        return True
    except OcrflowError as exc:
        return is_transient(exc)
    except Exception:
        return False
    return False


@task(
    name="check-status",
    task_run_name="check-status-{job_id}",
    retries=DEFAULT_RETRIES,
    retry_delay_seconds=DEFAULT_DELAYS,
    retry_jitter_factor=0.1,
    retry_condition_fn=retry_when_worth_it,
    **NOT_CACHED,  # a Pending answer must never come from a cache
)
async def check_status(
    job_id: str,
    runtime: Runtime | None = None,
    *,
    tick_s: float | None = None,
    submitted_at: float | None = None,
) -> OcrResponse:
    """GET RecognizeRegions?id=: the Completed answer; raise while it is Pending/Processing.

    Error and NotExist raise JobFailedError/JobNotFoundError, which are not retried: the flow
    decides whether to resubmit. One task run per job, however many polls it takes. With
    ``tick_s`` (the learned policy), each poll after the first waits for the next multiple of
    ``tick_s`` in the job's age (from ``submitted_at``, epoch seconds), so the time a poll
    takes does not push the later ones back. ``runtime``: the run's client and poll counts;
    without one, each poll opens a client from the credentials (fine for a few jobs).
    """
    async with given_or_own(runtime, ledger=False) as run:
        if tick_s is not None and submitted_at is not None:
            await _wait_for_tick(run, job_id, tick_s, submitted_at)
        try:
            response = await _get(run, job_id)
        except RateLimitedError as exc:
            # Prefect's retry delays are fixed; a longer server hint is honoured here first.
            await run.clock.sleep(min(exc.retry_after_s or 0.0, MAX_INLINE_RETRY_AFTER_S))
            raise
    try:
        return require_completed(response, job_id)
    except JobNotReadyError as exc:
        get_run_logger().debug("job %s is %s", job_id, exc.status)
        raise


@task(
    name="first-look",
    task_run_name="first-look-{label}",
    **NOT_CACHED,
)
async def first_look(
    label: str, job_ids: list[str], runtime: Runtime | None = None
) -> dict[str, OcrResponse | Exception]:
    """One GET of each job of a batch, side by side: its answer, or why there is none.

    Jobs already done (most of a sweep's) are settled from this one call each, without a task
    run of their own; the flow polls the others with ``check_status``.
    """
    async with given_or_own(runtime, ledger=False) as run:

        async def look(job_id: str) -> OcrResponse | Exception:
            try:
                return await _get(run, job_id)
            except Exception as exc:  # the flow decides per job: poll again, resubmit or report
                return exc

        answers = await asyncio.gather(*(look(job_id) for job_id in job_ids))
    return dict(zip(job_ids, answers, strict=True))


async def _get(runtime: Runtime, job_id: str) -> OcrResponse:
    """One GET of the job, counted and timed for the ledger and the learned policy."""
    try:
        response = await runtime.client.get_result(job_id)
    except Exception:  # billed, perhaps, but it says nothing about the job
        runtime.polls[job_id] += 1
        raise
    runtime.note_poll(job_id, response.task_status)
    return response


async def _wait_for_tick(runtime: Runtime, job_id: str, tick_s: float, submitted_at: float) -> None:
    """Wait for the tick after the job's last poll (the learned policy's schedule)."""
    polls = runtime.poll_log.get(job_id)
    if not polls:
        return  # the caller waited for the first poll's tick
    due_at = polls[-1][0] + until_next_tick(polls[-1][0] - submitted_at, tick_s)
    await runtime.clock.sleep(due_at - runtime.clock.now().timestamp())


def check_on_ticks(
    runtime: Runtime, tick_s: float, deadline_s: float, submitted_at: float
) -> PollJob:
    """The status check polling on the multiples of ``tick_s`` (the learned policy's lag
    budget) in the job's age; the waits happen in the task, so Prefect retries at once."""
    check = check_status.with_options(
        retries=max(math.ceil(deadline_s / tick_s), 1),
        retry_delay_seconds=[0],
        retry_jitter_factor=0,
    )

    async def poll(job_id: str) -> OcrResponse:
        return await check(job_id, runtime, tick_s=tick_s, submitted_at=submitted_at)

    return poll


def configured_check_status(runtime: Runtime, policy: PollPolicy, polls_done: int = 0) -> PollJob:
    """The status check with the retry schedule of ``policy`` (its deadline bounds the polls).

    ``polls_done``: polls the job had before (a first look), so the schedule goes on from there.
    """
    retries, delays = policy.retry_schedule()
    if polls_done:
        retries = max(retries - polls_done, 0)
        delays = delays[polls_done:] or delays[-1:]
    check = check_status.with_options(
        retries=retries,
        retry_delay_seconds=delays,
        retry_jitter_factor=policy.jitter,
    )

    async def poll(job_id: str) -> OcrResponse:
        return await check(job_id, runtime)

    return poll
