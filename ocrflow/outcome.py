"""Reading a job's answer without I/O: completed, not ready yet, failed, or gone."""

from __future__ import annotations

from ocrflow.errors import JobFailedError, JobNotFoundError, JobNotReadyError
from ocrflow.models import OcrResponse, TaskStatus


def require_completed(response: OcrResponse, job_id: str) -> OcrResponse:
    """Return the response when the job is Completed; otherwise raise what its status means.

    Pending/Processing → :class:`JobNotReadyError` (poll again); Error → :class:`JobFailedError`
    with the service's messages; NotExist → :class:`JobNotFoundError` (unknown, expired after
    24 h, or cancelled: only a resubmission of the original image helps).
    """
    status = response.task_status
    if status is TaskStatus.COMPLETED:
        return response
    if status in (TaskStatus.PENDING, TaskStatus.PROCESSING):
        raise JobNotReadyError(f"job {job_id} is {status.value}", job_id=job_id, status=status)
    if status is TaskStatus.ERROR:
        messages = response.messages
        detail = "; ".join(messages) if messages else "no message from the service"
        raise JobFailedError(f"job {job_id} failed: {detail}", job_id=job_id, messages=messages)
    raise JobNotFoundError(
        f"job {job_id} does not exist (unknown id, expired after 24 h, or cancelled)",
        job_id=job_id,
    )
