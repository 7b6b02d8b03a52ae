"""The decode step: base64 of every result entry, strict and size-limited."""

from __future__ import annotations

from prefect import task

from ocrflow.models import OcrResponse
from ocrflow.processing import DecodedEntry, decode_response
from tasks.options import NOT_CACHED
from tasks.runtime import current_runtime


@task(
    name="decode-results",
    task_run_name="decode-{job_id}",
    **NOT_CACHED,
)
async def decode_results(
    job_id: str, response: OcrResponse, region_count: int | None
) -> list[DecodedEntry]:
    """Decode every entry of a completed answer; a bad entry carries its error, alone."""
    max_bytes = current_runtime().settings.max_result_bytes
    return decode_response(response, region_count=region_count, max_bytes=max_bytes)
