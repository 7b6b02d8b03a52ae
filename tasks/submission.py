"""Submitting: one image with its regions and settings, and resubmitting a job's original."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from prefect import task
from prefect.logging import get_run_logger

from ocrflow.errors import ApiError, ResubmissionInFlightError
from ocrflow.jobspec import JobSpec
from ocrflow.ledger import SubmissionRecord, SubmissionState
from ocrflow.models import RecognizeRegionsSettings, Region
from ocrflow.submitting import Submission, interrupted, submit_recorded
from tasks.options import NOT_CACHED
from tasks.runtime import current_runtime


@task(name="submit-job", **NOT_CACHED)
async def submit_job(spec: JobSpec) -> str:
    """Check the image, write the intent, send it, record the new job (ocrflow.submitting)."""
    runtime = current_runtime()
    image = await asyncio.to_thread(_read_image, spec, runtime.settings.max_image_bytes)
    submission = Submission(
        image=image,
        source=str(spec.image),
        regions=spec.wire_regions(),
        stored_regions=[region.stored() for region in spec.regions],
        settings=spec.settings,
    )
    job_id = await submit_recorded(
        runtime.ledger,
        runtime.client.submit_regions,
        submission,
        ledger_retry_s=runtime.settings.ledger_retry_s,
        now=runtime.clock.now,
    )
    get_run_logger().info("submitted %s as job %s", spec.image.name, job_id)
    return job_id


@task(
    name="resubmit-job",
    task_run_name="resubmit-{job_id}",
    **NOT_CACHED,
)
async def resubmit_job(job_id: str, reason: str) -> str:
    """Send a job's original image again; the new job is linked to the old one."""
    runtime = current_runtime()
    record = await runtime.ledger.get_job(job_id)
    if record is None or record.image_sha256 is None:
        raise LookupError(f"job {job_id} has no original image in the ledger")
    image = await runtime.ledger.load_image(record.image_sha256)
    if image is None:
        raise LookupError(f"the original image of job {job_id} is missing from the ledger")
    regions = [Region.model_validate(region) for region in record.regions]
    settings = RecognizeRegionsSettings.model_validate(record.settings)
    if not await runtime.ledger.begin_resubmission(job_id, runtime.fence):
        raise ResubmissionInFlightError(
            f"job {job_id} is being resubmitted by another run (or was, when a run stopped), "
            "or another run has taken over its lease"
        )
    sent_at = runtime.clock.now()
    try:
        new_id = await runtime.client.submit_regions(image, regions, settings)
    except ApiError:
        # The service answered, so it did not take the job: another try is safe.
        await runtime.ledger.abandon_resubmission(job_id)
        raise
    # A transport failure leaves the mark: the image may have arrived, and is not sent again.
    await runtime.ledger.record_resubmission(
        job_id,
        new_id,
        reason=reason,
        polls=runtime.polls.pop(job_id, 0),
        image_bytes=len(image),
        submitted_at=sent_at,
    )
    if runtime.fence is not None and job_id in runtime.fence.epochs:  # the new job: same lease
        runtime.fence.epochs[new_id] = runtime.fence.epochs[job_id]
    get_run_logger().info("job %s resubmitted as %s (%s)", job_id, new_id, reason)
    return new_id


def _read_image(spec: JobSpec, max_bytes: int) -> bytes:
    try:
        size = spec.image.stat().st_size
        if size > max_bytes:
            raise ValueError(f"image {spec.image} has {size} bytes, over the {max_bytes} limit")
        return spec.image.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read image {spec.image}: {exc.strerror or exc}") from exc


@task(name="close-interrupted-submissions", **NOT_CACHED)
async def close_interrupted_submissions() -> list[SubmissionRecord]:
    """Submissions left ``sending`` by a run that stopped: marked ``unknown`` with the reason
    (each by one run only), and returned so that the sweep reports them."""
    runtime = current_runtime()
    now = runtime.clock.now()
    pending = await runtime.ledger.submissions([SubmissionState.SENDING])
    closed: list[SubmissionRecord] = []
    for stale in interrupted(pending, now, stale_s=runtime.settings.submission_stale_s):
        why = (
            f"the run sending {stale.source or 'this image'} stopped before the job id came "
            f"back or was recorded (begun {stale.created_at:%Y-%m-%d %H:%M:%S} UTC): the "
            "service may hold, and bill, a job whose id is unknown; the image is kept in the "
            "ledger"
        )
        if await runtime.ledger.close_submission(stale.id, SubmissionState.UNKNOWN, why):
            closed.append(replace(stale, state=SubmissionState.UNKNOWN, error=why))
    return closed
