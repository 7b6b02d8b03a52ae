"""Submitting an image so that a paid job is never unrecorded: intent, send, record.

1. Check the input (:mod:`ocrflow.preflight`): what must fail is never sent.
2. Write the intent: the image and a ``sending`` submission, in one transaction.
3. POST. The service answered with an error → ``refused`` (no job was made). The answer never
   came (connection lost, timeout, cancelled) → ``unknown``: the service may hold a job whose
   id we will never know; the ledger keeps the image and the reason.
4. Record the job id and mark the submission ``sent``, in one transaction.

Ledger writes are retried on transient database errors within ``ledger_retry_s`` (a database
restart). Should step 4 still fail, the job id is in the error (:class:`PostedNotRecordedError`)
and the submission stays ``sending``: a sweep reports it. A run killed anywhere leaves, at
worst, a ``sending`` submission with its image: visible, never silent.

Resubmitting a job's original (:func:`resubmit_recorded`) follows the same idea: mark the job
``resubmitting`` (under the run's lease), send, then record the new job linked to the old one.
The service answered with an error → the mark is taken back (no job was made, another try is
safe). The answer never came → the mark stays: the image may have arrived, so no run sends it
again, and the next sweep ends the job with that reason. At most one resubmission of a job is
ever in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ocrflow.dbretry import retry_transient
from ocrflow.errors import ApiError, OcrflowError, ResubmissionInFlightError
from ocrflow.interrupt import stop_requested
from ocrflow.ledger import Fence, Ledger, SubmissionRecord, SubmissionState
from ocrflow.models import RecognizeRegionsSettings, Region, to_wire
from ocrflow.preflight import check_submission

Send = Callable[[bytes, list[Region], RecognizeRegionsSettings], Awaitable[str]]


class NotSentError(OcrflowError):
    """The image was not sent: nothing was paid for (a stop was asked for, or the ledger could
    not take the intent)."""


class PostedNotRecordedError(OcrflowError):
    """The service took the job, but the ledger could not record it: ``job_id`` says which."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class SendUnknownError(OcrflowError):
    """The POST's answer never came: the service may hold a job whose id is unknown."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One image to send: its bytes, regions (as stored) and settings."""

    image: bytes
    source: str
    regions: list[Region]
    stored_regions: list[dict[str, Any]]
    settings: RecognizeRegionsSettings


async def submit_recorded(
    ledger: Ledger,
    send: Send,
    submission: Submission,
    *,
    ledger_retry_s: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    """Check, write the intent, send, record: the new job's id (see the module's steps)."""
    # Decoding a large image is CPU work: off the event loop.
    await asyncio.to_thread(
        check_submission, submission.image, submission.regions, name=submission.source
    )
    stored_settings = to_wire(submission.settings.model_copy(update={"regions": None}))
    try:
        intent = await retry_transient(
            lambda: ledger.begin_submission(
                submission.image,
                source=submission.source,
                regions=submission.stored_regions,
                settings=stored_settings,
            ),
            budget_s=ledger_retry_s,
        )
    except Exception as exc:
        raise NotSentError(f"not sent: the ledger cannot record it ({exc})") from exc
    if stop_requested():
        await _close(ledger, intent, SubmissionState.REFUSED, "not sent: stopped", ledger_retry_s)
        raise NotSentError("not sent: the submission was stopped (SIGINT/SIGTERM)")
    sent_at = now()
    try:
        job_id = await send(submission.image, submission.regions, submission.settings)
    except ApiError as exc:  # the service answered: it made no job
        await _close(ledger, intent, SubmissionState.REFUSED, str(exc), ledger_retry_s)
        raise
    except BaseException as exc:  # the answer never came: a job may exist
        why = (
            f"the service may hold a job for this image, its id never came back: "
            f"{type(exc).__name__}: {exc}"
        )
        await asyncio.shield(_close(ledger, intent, SubmissionState.UNKNOWN, why, ledger_retry_s))
        if isinstance(exc, Exception):
            raise SendUnknownError(why) from exc
        raise
    try:
        await asyncio.shield(
            retry_transient(
                lambda: ledger.record_submitted(intent, job_id, submitted_at=sent_at),
                budget_s=ledger_retry_s,
            )
        )
    except Exception as exc:
        raise PostedNotRecordedError(
            f"job {job_id} was created but the ledger could not record it ({exc}); "
            f"fetch it with `ocrflow fetch {job_id}`",
            job_id=job_id,
        ) from exc
    return job_id


async def resubmit_recorded(
    ledger: Ledger,
    send: Send,
    job_id: str,
    *,
    reason: str,
    fence: Fence | None,
    polls: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    """Send a job's original image again: mark, send, record (see the module's notes); the new
    job's id. ``fence``: the run's lease tokens (the new job joins the lease); ``polls``: the
    old job's polls in this run, written with it."""
    record = await ledger.get_job(job_id)
    if record is None or record.image_sha256 is None:
        raise LookupError(f"job {job_id} has no original image in the ledger")
    image = await ledger.load_image(record.image_sha256)
    if image is None:
        raise LookupError(f"the original image of job {job_id} is missing from the ledger")
    regions = [Region.model_validate(region) for region in record.regions]
    settings = RecognizeRegionsSettings.model_validate(record.settings)
    if not await ledger.begin_resubmission(job_id, fence):
        raise ResubmissionInFlightError(
            f"job {job_id} is being resubmitted by another run (or was, when a run stopped), "
            "or another run has taken over its lease"
        )
    sent_at = now()
    try:
        new_id = await send(image, regions, settings)
    except ApiError:
        # The service answered, so it did not take the job: another try is safe.
        await ledger.abandon_resubmission(job_id)
        raise
    # A transport failure leaves the mark: the image may have arrived, and is not sent again.
    await ledger.record_resubmission(
        job_id, new_id, reason=reason, polls=polls, image_bytes=len(image), submitted_at=sent_at
    )
    if fence is not None and job_id in fence.epochs:  # the new job: under the same lease
        fence.epochs[new_id] = fence.epochs[job_id]
    return new_id


async def _close(
    ledger: Ledger, intent: str, state: SubmissionState, why: str, budget_s: float
) -> None:
    # Should even this fail, it stays `sending`, which a sweep reports: never lost.
    with contextlib.suppress(Exception):
        await retry_transient(
            lambda: ledger.close_submission(intent, state, why), budget_s=budget_s
        )


def interrupted(
    submissions: Sequence[SubmissionRecord], now: datetime, *, stale_s: float
) -> list[SubmissionRecord]:
    """Submissions still ``sending`` longer than any live send takes: their run stopped."""
    cutoff = now - timedelta(seconds=stale_s)
    return [s for s in submissions if s.state is SubmissionState.SENDING and s.created_at < cutoff]
