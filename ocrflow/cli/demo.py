"""The demo: the whole product offline on the shipped samples, and a check of every text.

Starts the emulator (real OCR) on a free port of 127.0.0.1, runs the ``ocr-pipeline`` flow
through Prefect (a local temporary server unless PREFECT_API_URL points at one) with the
SQLite ledger, then prints each region's recognised text beside the sample's known text.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ocrflow.cli.errors import UserError
from ocrflow.cli.orphans import crash_orphans_quietly, labelled
from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EmulatorSettings,
    ProcessingTime,
)
from ocrflow.jobspec import JobSpec, load_regions_file
from ocrflow.ledger import Ledger, ResultRecord
from ocrflow.redact import mask_credentials
from ocrflow.settings import OcrflowSettings


def run_demo(samples: Path, *, processing_s: float, console: Console) -> bool:
    """Run the demo; True when every region's text matches the sample's."""
    specs = [load_regions_file(path) for path in sorted(samples.glob("*.regions.json"))]
    if not specs:
        raise UserError(f"no *.regions.json samples in {samples}")
    emulator = create_app(
        EmulatorSettings.model_validate({"processing": ProcessingTime(seconds=processing_s)})
    )
    with serve_in_thread(emulator) as url:
        # The demo talks to its own emulator, whatever the environment says.
        os.environ["OCRFLOW_BASE_URL"] = url
        os.environ["OCRFLOW_TOKEN_URL"] = f"{url}/connect/token"
        os.environ["OCRFLOW_CLIENT_ID"] = DEMO_CLIENT_ID
        os.environ["OCRFLOW_CLIENT_SECRET"] = DEMO_CLIENT_SECRET
        console.print(f"emulator (Tesseract OCR) on {url}; running the ocr-pipeline flow…")
        settings = OcrflowSettings()
        from ocrflow.flows.pipeline import PipelineSummary, ocr_pipeline, summary_of  # noqa: PLC0415

        async def run() -> tuple[Any, PipelineSummary]:
            await crash_orphans_quietly()
            state = await labelled(ocr_pipeline)(specs, return_state=True)
            return state, await summary_of(state, PipelineSummary)

        with console.status(f"submitting {len(specs)} samples and fetching their results…"):
            state, summary = asyncio.run(run())
    console.print(f"pipeline run {state.type.value.lower()}: {summary.headline()}")
    job_ids = summary.submitted.job_ids
    final_ids = [r.final_job_id or r.job_id for r in summary.fetched.reports]
    stored = asyncio.run(_results(settings, final_ids))
    matched = _print_texts(console, specs, job_ids, final_ids, stored)
    console.print(
        f"\nledger: {mask_credentials(settings.ledger_url)}\n"
        f"files:  {Path(settings.results_dir).resolve()}\n"
        "runs:   `make ui` serves the Prefect UI on http://127.0.0.1:4200 with these runs"
    )
    return matched and state.is_completed()


async def _results(settings: OcrflowSettings, job_ids: list[str]) -> list[ResultRecord]:
    async with Ledger.connect(settings.ledger_url) as ledger:
        return await ledger.results(job_ids)


def _print_texts(
    console: Console,
    specs: list[JobSpec],
    job_ids: list[str],
    final_ids: list[str],
    stored: list[ResultRecord],
) -> bool:
    table = Table(title="recognised text per region")
    for column in ("sample", "region", "recognised", "expected", ""):
        table.add_column(column, overflow="fold")
    by_job: dict[str, list[ResultRecord]] = {}
    for record in stored:
        by_job.setdefault(record.job_id, []).append(record)
    matched = len(job_ids) == len(specs)
    for spec, final_id in zip(specs, final_ids, strict=False):
        texts = {r.region: r.text for r in by_job.get(final_id, []) if r.kind == "text"}
        for index, region in enumerate(sorted(spec.regions, key=lambda r: r.order)):
            got = texts.get(index)
            ok = got == region.expected
            matched &= ok
            table.add_row(
                spec.image.name,
                region.name or str(index),
                got if got is not None else "—",
                region.expected or "",
                "[green]✓[/]" if ok else "[red]✗[/]",
            )
    console.print(table)
    total = sum(len(spec.regions) for spec in specs)
    verdict = "[green]all match[/]" if matched else "[red]MISMATCH[/]"
    console.print(f"{total} regions in {len(specs)} samples: {verdict}")
    return matched
