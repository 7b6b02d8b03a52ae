"""Processing by result type: one task per kind (Text, JSON, Hocr, Pdf, other), per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prefect import task

from ocrflow.processing import DecodedEntry, ProcessedEntry, ResultKind, process_decoded
from ocrflow.tasks.options import NOT_CACHED

ProcessTask = Callable[
    [str, dict[str, list[DecodedEntry]]], Awaitable[dict[str, list[ProcessedEntry]]]
]


def _process_task(kind: ResultKind) -> ProcessTask:
    @task(
        name=f"process-{kind.value}",
        task_run_name=f"process-{kind.value}-{{label}}",
        **NOT_CACHED,
    )
    async def process(
        label: str, entries: dict[str, list[DecodedEntry]]
    ) -> dict[str, list[ProcessedEntry]]:
        # Parsing (PDFs above all) is CPU work: keep it off the flow's event loop.
        return await asyncio.to_thread(
            lambda: {
                job_id: [process_decoded(entry) for entry in job_entries]
                for job_id, job_entries in entries.items()
            }
        )

    process.__doc__ = f"Process the {kind.value} entries of a batch of jobs; a bad one fails alone."
    return process


PROCESS_TASKS: dict[ResultKind, ProcessTask] = {kind: _process_task(kind) for kind in ResultKind}


async def process_by_kind(
    label: str, decoded: dict[str, list[DecodedEntry]]
) -> dict[str, list[ProcessedEntry]]:
    """One processing task per result kind present in the batch; entries keep their order."""
    by_kind: dict[ResultKind, dict[str, list[DecodedEntry]]] = {}
    for job_id, entries in decoded.items():
        for entry in entries:
            by_kind.setdefault(entry.kind, {}).setdefault(job_id, []).append(entry)
    processed: dict[str, list[ProcessedEntry]] = {job_id: [] for job_id in decoded}
    for kind, entries_by_job in by_kind.items():
        for job_id, done in (await PROCESS_TASKS[kind](label, entries_by_job)).items():
            processed[job_id] += done
    return {
        job_id: sorted(entries, key=lambda entry: entry.index)
        for job_id, entries in processed.items()
    }
