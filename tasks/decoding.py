"""The decode step: base64 of every result entry of a batch of jobs, strict and size-limited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prefect import task

from ocrflow.models import OcrResponse
from ocrflow.processing import DecodedEntry, decode_response
from tasks.options import NOT_CACHED
from tasks.runtime import current_runtime


@dataclass(frozen=True, slots=True)
class CompletedAnswer:
    """A job's Completed answer and how many regions it was submitted with (None: unknown)."""

    response: OcrResponse
    region_count: int | None


@task(
    name="decode-results",
    task_run_name="decode-{label}",
    **NOT_CACHED,
)
async def decode_results(
    label: str, answers: dict[str, CompletedAnswer]
) -> dict[str, list[DecodedEntry]]:
    """Decode every entry of each completed answer; a bad entry carries its error, alone."""
    max_bytes = current_runtime().settings.max_result_bytes

    def decode_all() -> dict[str, list[DecodedEntry]]:
        return {
            job_id: decode_response(
                answer.response, region_count=answer.region_count, max_bytes=max_bytes
            )
            for job_id, answer in answers.items()
        }

    # Large results (PDFs) take real CPU to decode: keep it off the flow's event loop.
    return await asyncio.to_thread(decode_all)
