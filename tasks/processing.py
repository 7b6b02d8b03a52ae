"""Processing by result type: one task per kind (Text, JSON, Hocr, Pdf, other)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prefect import task

from ocrflow.processing import DecodedEntry, ProcessedEntry, ResultKind, process_decoded
from tasks.options import NOT_CACHED

ProcessTask = Callable[[str, list[DecodedEntry]], Awaitable[list[ProcessedEntry]]]


def _process_task(kind: ResultKind) -> ProcessTask:
    @task(
        name=f"process-{kind.value}",
        task_run_name=f"process-{kind.value}-{{job_id}}",
        **NOT_CACHED,
    )
    async def process(job_id: str, entries: list[DecodedEntry]) -> list[ProcessedEntry]:
        # Parsing (PDFs above all) is CPU work: keep it off the flow's event loop.
        return await asyncio.to_thread(lambda: [process_decoded(entry) for entry in entries])

    process.__doc__ = f"Process a job's {kind.value} entries; a bad entry fails alone."
    return process


PROCESS_TASKS: dict[ResultKind, ProcessTask] = {kind: _process_task(kind) for kind in ResultKind}
