"""Submitting: one image with its regions and settings, and resubmitting a job's original."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from prefect import task
from prefect.logging import get_run_logger

from ocrflow.jobspec import JobSpec
from ocrflow.ledger import SubmissionRecord, SubmissionState
from ocrflow.runtime import Runtime
from ocrflow.submitting import Submission, interrupted, resubmit_recorded, submit_recorded
from ocrflow.tasks.credentials import given_or_own
from ocrflow.tasks.options import NOT_CACHED


@task(name="submit-job", **NOT_CACHED)
async def submit_job(spec: JobSpec, runtime: Runtime | None = None) -> str:
    """Check the image, write the intent, send it, record the new job (ocrflow.submitting)."""
    async with given_or_own(runtime) as run:
        return await _submit(run, spec)


async def _submit(runtime: Runtime, spec: JobSpec) -> str:
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
async def resubmit_job(job_id: str, reason: str, runtime: Runtime | None = None) -> str:
    """Send a job's original image again; the new job is linked to the old one."""
    async with given_or_own(runtime) as run:
        return await _resubmit(run, job_id, reason)


async def _resubmit(runtime: Runtime, job_id: str, reason: str) -> str:
    new_id = await resubmit_recorded(
        runtime.ledger,
        runtime.client.submit_regions,
        job_id,
        reason=reason,
        fence=runtime.fence,
        polls=runtime.polls.pop(job_id, 0),
        now=runtime.clock.now,
    )
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
async def close_interrupted_submissions(runtime: Runtime | None = None) -> list[SubmissionRecord]:
    """Submissions left ``sending`` by a run that stopped: marked ``unknown`` with the reason
    (each by one run only), and returned so that the sweep reports them."""
    async with given_or_own(runtime) as run:
        return await _close_interrupted(run)


async def _close_interrupted(runtime: Runtime) -> list[SubmissionRecord]:
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
