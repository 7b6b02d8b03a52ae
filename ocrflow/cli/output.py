"""Rendering for the command line: tables, JSON and CSV exports of stored results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePath
from typing import Any

from rich.table import Table
from rich.text import Text

from ocrflow.flows.reports import FetchSummary
from ocrflow.ledger import JobRecord, JobState, ResultRecord
from ocrflow.polling import RETENTION_S
from ocrflow.redact import mask_credentials, printable

RESULT_FIELDS = (
    "job_id",
    "entry_index",
    "region",
    "region_name",
    "wire_type",
    "kind",
    "text",
    "file_path",
    "error",
    "warnings",
    "structured",
)


def fetch_table(summary: FetchSummary) -> Table:
    """One row per job of a fetch run."""
    table = Table(title=f"fetch: {summary.headline()}")
    for column in ("job", "outcome", "entries ok", "resubmitted", "message"):
        table.add_column(column, overflow="fold")
    for report in summary.reports:
        ok = f"{report.entries - report.failed_entries}/{report.entries}" if report.entries else ""
        table.add_row(
            *_cells(
                report.job_id,
                report.outcome.value,
                ok,
                str(report.resubmissions or ""),
                mask_credentials(report.message),
            )
        )
    return table


def _cells(*values: str) -> list[Text]:
    """Cells shown as plain text: no markup read, control characters escaped (stored text and
    names come from the service and from users' files)."""
    return [Text(printable(value)) for value in values]


def results_table(results: Sequence[ResultRecord]) -> Table:
    """Stored results, one row per entry."""
    table = Table(title=f"{len(results)} stored result entries")
    for column in ("job", "#", "region", "type", "text / file", "error"):
        table.add_column(column, overflow="fold")
    for r in results:
        shown = r.text if r.text is not None else (r.file_path or "")
        table.add_row(
            *_cells(
                r.job_id,
                str(r.entry_index),
                r.region_name or ("" if r.region is None else str(r.region)),
                r.wire_type or r.kind,
                shown,
                r.error or "",
            )
        )
    return table


def results_json(results: Sequence[ResultRecord]) -> str:
    """Stored results as a JSON array."""
    return json.dumps([_row(r) for r in results], indent=2, ensure_ascii=False)


def results_csv(results: Sequence[ResultRecord]) -> str:
    """Stored results as CSV (structure and warnings as JSON cells)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    for r in results:
        row = _row(r)
        row["structured"] = (
            json.dumps(row["structured"], ensure_ascii=False) if row["structured"] else ""
        )
        row["warnings"] = json.dumps(row["warnings"], ensure_ascii=False) if row["warnings"] else ""
        writer.writerow(row)
    return out.getvalue()


def _row(r: ResultRecord) -> dict[str, Any]:
    return {field: getattr(r, field) for field in RESULT_FIELDS}


def jobs_table(jobs: Sequence[JobRecord], now: datetime, title: str) -> Table:
    """One row per job: its image, state, age against the 24 h retention, polls, last error."""
    table = Table(title=title)
    for column in ("job", "image", "state", "age / 24 h", "polls", "last error"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(
            job.job_id,
            Text(printable(PurePath(job.source).name if job.source else "")),
            job.state.value,
            retention_age(job, now),
            str(job.polls),
            Text(printable(mask_credentials((job.last_error or "")[:120]))),
        )
    return table


def retention_age(job: JobRecord, now: datetime) -> str:
    """How old the job is, and for an unfinished one whether its results have expired."""
    seconds = max((now - job.created_at).total_seconds(), 0.0)
    hours, minutes = divmod(int(seconds // 60), 60)
    age = f"{hours}h{minutes:02d}m"
    if job.state is JobState.SUBMITTED and seconds >= RETENTION_S:
        return f"{age} (expired)"
    return age
