"""The decode step: base64 of every result entry of a batch of jobs, strict and size-limited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prefect import task

from ocrflow.models import OcrResponse
from ocrflow.processing import DecodedEntry, decode_response
from ocrflow.settings import OcrflowSettings
from ocrflow.tasks.options import NOT_CACHED

DEFAULT_MAX_RESULT_BYTES: int = OcrflowSettings.model_fields["max_result_bytes"].default


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
    label: str, answers: dict[str, CompletedAnswer], max_bytes: int = DEFAULT_MAX_RESULT_BYTES
) -> dict[str, list[DecodedEntry]]:
    """Decode every entry of each completed answer; a bad entry carries its error, alone.

    ``max_bytes``: the largest decoded entry accepted (``OCRFLOW_MAX_RESULT_BYTES``).
    """

    def decode_all() -> dict[str, list[DecodedEntry]]:
        return {
            job_id: decode_response(
                answer.response, region_count=answer.region_count, max_bytes=max_bytes
            )
            for job_id, answer in answers.items()
        }

    # Large results (PDFs) take real CPU to decode: keep it off the flow's event loop.
    return await asyncio.to_thread(decode_all)
