"""Submit images with their regions, then fetch, decode, process and store their results.

The one-call path for the demo and for users who want it: ``submit-regions`` then
``fetch-results`` on the new jobs, as two subflows of this run. Run as a script it reads the
shipped samples.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed
from pydantic import BaseModel

from ocrflow.flows.alerts import alert_failed_run, job_lines
from ocrflow.flows.fetch_results import fetch_results
from ocrflow.flows.reports import FetchSummary
from ocrflow.flows.submit_regions import SubmitSummary, submit_regions
from ocrflow.jobspec import JobSpec, load_regions_file

_Summary = TypeVar("_Summary", bound=BaseModel)


class PipelineSummary(BaseModel):
    """What the pipeline did: the submissions and the fetch."""

    submitted: SubmitSummary
    fetched: FetchSummary

    def headline(self) -> str:
        """One line for the run's message."""
        return f"{self.submitted.headline()}; {self.fetched.headline()}"


@flow(name="ocr-pipeline", log_prints=False)
async def ocr_pipeline(jobs: list[JobSpec]) -> State[Any]:
    """Submit every image, then settle and store all the new jobs."""
    submit_state = await submit_regions(jobs, return_state=True)
    submitted = await summary_of(submit_state, SubmitSummary)
    fetch_state = await fetch_results(job_ids=submitted.job_ids, return_state=True)
    fetched = await summary_of(fetch_state, FetchSummary)
    summary = PipelineSummary(submitted=submitted, fetched=fetched)
    if submit_state.is_failed() or fetch_state.is_failed():
        not_sent = [f"{s.image} not submitted: {s.error}" for s in submitted.submissions if s.error]
        alert_failed_run(summary.headline(), not_sent + job_lines(fetched.failures))
        return Failed(message=summary.headline(), data=summary)
    return Completed(message=summary.headline(), data=summary)


async def summary_of(state: State[Any], kind: type[_Summary]) -> _Summary:
    """The summary a finished subflow left in its final state (Completed or Failed)."""
    data = await state.aresult(raise_on_failure=False)
    if not isinstance(data, kind):
        raise RuntimeError(f"subflow ended {state.type.value} without a summary: {state.message}")
    return data


def sample_jobs(folder: Path = Path("samples")) -> list[JobSpec]:
    """The shipped samples, one job each."""
    return [load_regions_file(path) for path in sorted(folder.glob("*.regions.json"))]


if __name__ == "__main__":
    asyncio.run(ocr_pipeline(sample_jobs()))
