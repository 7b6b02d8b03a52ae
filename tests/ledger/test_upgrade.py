"""An older ledger gains the columns and indexes a newer ocrflow added, and loses nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ocrflow.ledger import Ledger


async def test_missing_columns_are_added_to_an_older_ledger(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE ocrflow_jobs (job_id VARCHAR(36) PRIMARY KEY, state VARCHAR(16),"
            " last_status VARCHAR(16), image_sha256 VARCHAR(64), source TEXT, regions JSON,"
            " settings JSON, attempt INTEGER, polls INTEGER, replaces VARCHAR(36),"
            " replaced_by VARCHAR(36), last_error TEXT, created_at DATETIME,"
            " updated_at DATETIME, finished_at DATETIME)"
        )
        old.execute(
            "INSERT INTO ocrflow_jobs VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'stored',"
            " 'Completed', NULL, 'card.png', '[]', '{}', 1, 2, NULL, NULL, NULL,"
            " '2026-11-01 10:00:00', '2026-11-01 10:00:05', '2026-11-01 10:00:05')"
        )
    ledger = await Ledger.open(f"sqlite+aiosqlite:///{path}")
    try:
        job = await ledger.get_job("aaaaaaaa-0000-4000-8000-000000000001")
    finally:
        await ledger.close()
    assert job is not None
    assert (job.source, job.polls, job.processing_s, job.image_bytes) == ("card.png", 2, None, None)
    with sqlite3.connect(path) as upgraded:  # the sweep's indexes, on the table it already had
        indexes = {row[1] for row in upgraded.execute("PRAGMA index_list('ocrflow_jobs')")}
    assert {"ix_ocrflow_jobs_state_age", "ix_ocrflow_jobs_processing_times"} <= indexes
