"""Submit images with their regions: each becomes a job recorded in the ledger.

The original image is kept in the ledger (by its SHA-256) so that a job that ends NotExist or
Error can be resubmitted later. One image's failure never stops the others; the run ends
Failed when any image could not be submitted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.states import Completed, Failed
from pydantic import BaseModel

from ocrflow.interrupt import stop_on_signals
from ocrflow.jobspec import JobSpec
from ocrflow.runtime import open_runtime
from ocrflow.submitting import PostedNotRecordedError
from ocrflow.tasks.credentials import load_settings
from ocrflow.tasks.submission import submit_job


class Submission(BaseModel):
    """One image's submission: its job id, or why it failed."""

    image: str
    job_id: str | None = None
    error: str | None = None
    # The service took it, but the ledger could not record it: this is the job's id.
    unrecorded_job_id: str | None = None


class SubmitSummary(BaseModel):
    """A submit run's result."""

    submissions: list[Submission]

    @property
    def job_ids(self) -> list[str]:
        """The ids of the jobs created."""
        return [s.job_id for s in self.submissions if s.job_id]

    def headline(self) -> str:
        """One line for the run's message."""
        failed = sum(1 for s in self.submissions if s.error and not s.unrecorded_job_id)
        unrecorded = sum(1 for s in self.submissions if s.unrecorded_job_id)
        return (
            f"{len(self.job_ids)} of {len(self.submissions)} images submitted"
            + (f", {failed} failed" if failed else "")
            + (f", {unrecorded} created but not recorded in the ledger" if unrecorded else "")
        )


@flow(name="submit-regions", log_prints=False)
async def submit_regions(jobs: list[JobSpec]) -> State[Any]:
    """Send every image with its regions; record each new job in the ledger."""
    async with open_runtime(await load_settings()) as runtime:
        # As many at once as the client sends: an image waits before its intent is written,
        # so that a stop (SIGINT/SIGTERM) leaves the rest unsent, not queued mid-air.
        slots = asyncio.Semaphore(runtime.settings.concurrency)

        async def submit_one(spec: JobSpec) -> Submission:
            async with slots:
                try:
                    return Submission(image=str(spec.image), job_id=await submit_job(spec, runtime))
                except PostedNotRecordedError as exc:
                    return Submission(
                        image=str(spec.image), error=str(exc), unrecorded_job_id=exc.job_id
                    )
                except Exception as exc:  # one image's trouble never stops the others
                    return Submission(image=str(spec.image), error=f"{type(exc).__name__}: {exc}")

        # SIGINT/SIGTERM: no image is sent after it, those under way are recorded.
        with stop_on_signals():
            submissions = await asyncio.gather(*map(submit_one, jobs))
        summary = SubmitSummary(submissions=list(submissions))
    get_run_logger().info("submit finished: %s", summary.headline())
    if any(s.error for s in summary.submissions):
        return Failed(message=summary.headline(), data=summary)
    return Completed(message=summary.headline(), data=summary)
