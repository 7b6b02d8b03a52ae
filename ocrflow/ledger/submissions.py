"""Images and submissions: the intent written before a send, and what became of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ocrflow.ids import validate_job_id
from ocrflow.ledger.base import LedgerBase
from ocrflow.ledger.records import SubmissionRecord, aware, image_digest
from ocrflow.ledger.schema import ImageRow, JobRow, SubmissionRow, SubmissionState


class SubmissionsMixin(LedgerBase):
    """Images and submissions: the intent written before a send, and what became of it."""

    async def save_image(self, data: bytes) -> str:
        """Keep an image (once per content); returns its SHA-256."""
        digest = image_digest(data)
        row = {
            "sha256": digest,
            "data": data,
            "size_bytes": len(data),
            "created_at": self.clock.now(),
        }
        # Insert-or-ignore in one statement: two writers saving the same new image at once
        # (check-then-insert raced into an IntegrityError on PostgreSQL) both succeed.
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        async with self._write() as session:
            await session.execute(insert(ImageRow).values(**row).on_conflict_do_nothing())
        return digest

    async def begin_submission(
        self,
        data: bytes,
        *,
        source: str | None,
        regions: Sequence[dict[str, Any]],
        settings: dict[str, Any],
    ) -> str:
        """Keep the image and write the submission as ``sending``, before its POST; its id.

        One transaction: should the run die after the POST, the ledger still holds the image
        and what was being sent, and a sweep reports it.
        """
        digest = image_digest(data)
        submission_id = str(uuid.uuid4())
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        image = {
            "sha256": digest,
            "data": data,
            "size_bytes": len(data),
            "created_at": self.clock.now(),
        }
        async with self._write() as session:
            await session.execute(insert(ImageRow).values(**image).on_conflict_do_nothing())
            session.add(
                SubmissionRow(
                    id=submission_id,
                    state=SubmissionState.SENDING.value,
                    image_sha256=digest,
                    source=source,
                    regions=list(regions),
                    settings=settings,
                    image_bytes=len(data),
                )
            )
        return submission_id

    async def record_submitted(
        self, submission_id: str, job_id: str, *, submitted_at: datetime
    ) -> None:
        """In one transaction: the new job (from its submission) and the submission ``sent``.
        Idempotent: a retried call after a lost commit changes nothing more."""
        job_id = validate_job_id(job_id)
        async with self._write() as session:
            submission = await session.get(SubmissionRow, submission_id, with_for_update=True)
            if submission is None:
                raise LookupError(f"submission {submission_id} is not in the ledger")
            if await session.get(JobRow, job_id) is None:
                session.add(
                    JobRow(
                        job_id=job_id,
                        image_sha256=submission.image_sha256,
                        source=submission.source,
                        regions=list(submission.regions or []),
                        settings=dict(submission.settings or {}),
                        image_bytes=submission.image_bytes,
                        created_at=submitted_at,
                    )
                )
            submission.state = SubmissionState.SENT.value
            submission.job_id = job_id
            submission.error = None

    async def close_submission(
        self, submission_id: str, state: SubmissionState, error: str
    ) -> bool:
        """End a submission that has no job id: ``refused`` (no job was made) or ``unknown``
        (one may have been). Only a ``sending`` one changes; False otherwise."""
        if state not in (SubmissionState.REFUSED, SubmissionState.UNKNOWN):
            raise ValueError(f"close_submission() takes refused or unknown, not {state}")
        async with self._write() as session:
            changed = await session.execute(
                update(SubmissionRow)
                .where(SubmissionRow.id == submission_id)
                .where(SubmissionRow.state == SubmissionState.SENDING.value)
                .values(state=state.value, error=error[:2000], updated_at=self.clock.now())
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def submissions(
        self,
        states: Iterable[SubmissionState] | None = None,
        *,
        older_than: datetime | None = None,
    ) -> list[SubmissionRecord]:
        """Submissions in the given states (all when None), begun before ``older_than``."""
        query = select(SubmissionRow).order_by(SubmissionRow.created_at, SubmissionRow.id)
        if states is not None:
            query = query.where(SubmissionRow.state.in_([state.value for state in states]))
        if older_than is not None:
            query = query.where(SubmissionRow.created_at < older_than)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            SubmissionRecord(
                id=row.id,
                state=SubmissionState(row.state),
                image_sha256=row.image_sha256,
                source=row.source,
                job_id=row.job_id,
                error=row.error,
                created_at=aware(row.created_at),
            )
            for row in rows
        ]

    async def load_image(self, digest: str) -> bytes | None:
        """The image kept under ``digest``, if any."""
        async with self._sessions() as session:
            row = await session.get(ImageRow, digest)
            return None if row is None else row.data
